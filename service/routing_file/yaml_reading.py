"""Reading the routing file's YAML without trusting it: a size cap, a depth cap, no anchors
or aliases, and ``${NAME}`` substitution over string leaves only.

The routing file comes from a config var or a ConfigMap that more people can edit than
can deploy, so it is read as hostile input. Each guard answers a way a few bytes cost a
process its memory or its start-up:

- **Size**: the file (or ``CALLWATCH_CONFIG``) is at most ``MAX_BYTES``; a file is read
  up to one byte past that and no further, so a 50 MB file costs 1 MB.
- **Anchors and aliases** (``&x`` / ``*x``) are refused when they are composed, before
  anything is built: a 386-byte "billion laughs" file otherwise expands into a graph
  that substitution copies alias by alias (gigabytes). A routing file has no need of
  them: a sink is named, not copied.
- **Depth**: nodes nest at most ``MAX_DEPTH`` deep (a real file needs 6), so a file of
  brackets is one clear error rather than a ``RecursionError`` traceback.
- **Substitution** replaces ``${NAME}`` in string values (never keys) after the YAML is
  read, so a secret holding YAML's special characters cannot change the file's structure.
  ``$NAME`` without braces and an unclosed ``${NAME`` are errors naming the key, since
  they would otherwise be sent literally; ``$$`` is a literal ``$``.

Every refusal is a ``ConfigError`` whose message is one line naming the variable and
where to look (a line number, or the key path such as ``sinks.crm.secret``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from service.errors import ConfigError
from service.text import printable

#: The largest routing file read (1 MiB): a large deployment's file is a few kilobytes.
MAX_BYTES = 1024 * 1024
#: How deep collections may nest (the routing file's own deepest path is 6).
MAX_DEPTH = 20

# One scan of a string value: "$$", a "${...}" (closed or not), or "$" and a name.
_DOLLAR = re.compile(r"\$(?:(\$)|\{([^}]*)(\}?)|([A-Za-z_][A-Za-z0-9_]*))")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def read_file(path: str, variable: str = "CALLWATCH_CONFIG_FILE") -> str:
    """The text of the routing file at ``path``, refused past ``MAX_BYTES`` (read no further)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise ConfigError(variable, f"cannot read {path}: {type(error).__name__}: "
                                    f"{error.strerror or error}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(variable, f"{path} is over {_size(MAX_BYTES)}; a routing file is a "
                                    "few kilobytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(variable, f"cannot read {path}: not UTF-8 (byte {error.start})") from None


def load_yaml(text: str, variable: str = "CALLWATCH_CONFIG",
              loader: type[HardenedLoader] | None = None) -> Any:
    """The YAML document in ``text``, refused when over ``MAX_BYTES``, deeper than
    ``MAX_DEPTH``, holding an anchor or alias, or not valid YAML; ``loader`` may be a
    subclass of ``HardenedLoader`` that adds checks of its own."""
    # len() in characters first: no copy of a huge text is made just to measure it.
    if len(text) > MAX_BYTES or len(text.encode("utf-8")) > MAX_BYTES:
        raise ConfigError(variable, f"is over {_size(MAX_BYTES)}; a routing file is a few kilobytes")
    try:
        return yaml.load(text, Loader=loader or HardenedLoader)  # noqa: S506 - a SafeLoader subclass
    except Refused as error:
        raise ConfigError(variable, str(error)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid syntax"
        raise ConfigError(variable, f"is not valid YAML{where}: {_one_line(problem)}") from None


class Refused(yaml.YAMLError):
    """Valid YAML that the routing file may not use (an alias, an anchor, too deep)."""


class HardenedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses anchors and aliases and nesting past ``MAX_DEPTH``,
    as each node is composed: nothing is built from a refused file."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise Refused(f"line {line}: YAML aliases (*{_one_line(event.anchor)}) are not "
                          "allowed in the routing file; write the value out")
        if getattr(event, "anchor", None) is not None:
            raise Refused(f"line {line}: YAML anchors (&{_one_line(event.anchor)}) are not "
                          "allowed in the routing file; write the value out")
        if self._depth >= MAX_DEPTH:
            raise Refused(f"line {line}: nested more than {MAX_DEPTH} deep")
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call, no-any-return]
        finally:
            self._depth -= 1


def substitute(raw: Any, environ: Mapping[str, str], variable: str = "CALLWATCH_CONFIG",
               path: str = "") -> Any:
    """``raw`` (as ``load_yaml`` returns it) with ``${NAME}`` in every string value replaced
    by that environment variable (stripped); keys and other scalars are left alone. A value
    substituted is not scanned again. An unset or empty variable, ``$NAME`` without braces,
    an unclosed ``${`` and a ``${...}`` that is not a name are errors naming the key path."""
    if isinstance(raw, dict):
        return {key: substitute(value, environ, variable, f"{path}.{key}" if path else str(key))
                for key, value in raw.items()}
    if isinstance(raw, list):
        return [substitute(item, environ, variable, f"{path}[{index}]")
                for index, item in enumerate(raw)]
    if not isinstance(raw, str) or "$" not in raw:
        return raw
    where = _one_line(path) or "(top level)"  # a key may hold a line break: keep one line

    def replace(found: re.Match[str]) -> str:
        dollar, inner, closed, bare = found.groups()
        if dollar:
            return "$"
        if bare is not None:
            raise ConfigError(variable, f"{where}: ${bare} needs braces: write ${{{bare}}} "
                                        "(or $$ for a literal $)")
        if not closed:
            raise ConfigError(variable, f"{where}: ${{{_one_line(_short(inner))} is not closed "
                                        "with }")
        if not _NAME.match(inner):
            raise ConfigError(variable, f"{where}: ${{{_one_line(_short(inner))}}} is not an "
                                        "environment variable's name")
        value = environ.get(inner, "").strip()
        if not value:
            raise ConfigError(variable, f"{where}: ${{{inner}}} is not set in the environment")
        return value

    return _DOLLAR.sub(replace, raw)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _one_line(text: str) -> str:
    """``text`` safe inside a one-line message: control characters escaped."""
    return printable(text)
