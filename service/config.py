"""The routing file (``CALLWATCH_CONFIG`` / ``CALLWATCH_CONFIG_FILE``), parsed once at start-up.

The YAML names sinks, ordered routes with matchers, a ``default`` and the storm
and ratio settings (the README's "Routing, PagerDuty, Teams, email and silences").
``${NAME}`` in any string value is replaced by that environment variable after the YAML is read, so a
secret holding YAML's special characters cannot change the file's structure. Every
mistake raises ``ConfigError`` whose message starts with the key path
(``routes[1].match.colour: unknown matcher key``), so the process stops with one
line that says where to look. The result is frozen values only; the router
(``service.delivery.routing``) and the sinks (``service.delivery.sinks``) are built
from it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import yaml

from service.delivery.incidents.policy import (
    GROUP_KEYS,
    MAX_RATIO_WINDOW_S,
    RATIO_BUCKET_S,
    RatioPolicy,
    StormPolicy,
)
from service.delivery.sinks.base import SinkSpec
from service.errors import ConfigError
from service.http import require_secure_url

SINK_NAME_RE = re.compile(r"^[a-z0-9-]{1,40}\Z")
ROUTE_NAME_RE = SINK_NAME_RE
_VAR_RE = re.compile(r"\$\{([^}]*)\}")
_VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+\Z")
SEVERITIES = ("error", "warning")
CATEGORIES = ("device", "network", "media", "auth", "outcome", "other")
#: Matcher keys whose values are globs (``fnmatch`` syntax, case-sensitive).
GLOB_KEYS = ("issue", "from", "to")
MATCH_KEYS = ("severity", "issue", "error_code", "category", "edge", "direction", "from", "to",
              "account_sid", "sdk_type", "country_code")
#: Each sink type's fields: required, then optional. Secrets are masked when printed.
SINK_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "slack": (("url",), ()),
    "webhook": (("url", "secret"), ()),
    "pagerduty": (("routing_key",), ()),
    "teams": (("url",), ()),
    "email": (("to",), ()),
    "log": ((), ()),
}
SECRET_FIELDS = frozenset({"url", "secret", "routing_key"})
_TOP_KEYS = ("sinks", "routes", "default", "storm", "ratio")
_ROUTE_KEYS = ("name", "match", "sinks", "continue", "storm", "ratio")
_STORM_KEYS = ("calls", "within_s", "group_by", "update_every_s", "resolve_after_s")
_RATIO_KEYS = ("percent", "min_calls", "window_s", "resolve_after_s")


@dataclass(frozen=True)
class Matcher:
    """What an alert must show: for each given key, one of its values (all keys must hold)."""

    conditions: tuple[tuple[str, tuple[str | int, ...]], ...] = ()

    def to_json(self) -> dict[str, list[str | int]]:
        return {key: list(values) for key, values in self.conditions}

    def describe(self) -> str:
        """``severity=error issue=sdk_edge/*``: how a person writes it (``*`` when empty)."""
        return " ".join(f"{key}={','.join(str(v) for v in values)}"
                        for key, values in self.conditions) or "*"


@dataclass(frozen=True)
class Route:
    """One entry of ``routes``: its matcher, its sinks (``()`` drops), and what follows."""

    name: str
    match: Matcher
    sinks: tuple[str, ...]
    continue_: bool = False
    storm: StormPolicy | None = field(default_factory=StormPolicy)
    ratio: RatioPolicy | None = None


@dataclass(frozen=True)
class RoutingConfig:
    """The parsed file: sinks (with secrets: never logged), routes, default, policies."""

    source: str
    sinks: tuple[SinkSpec, ...] = ()
    routes: tuple[Route, ...] = ()
    #: Sinks for an alert no route took; ``None``: such an alert is unrouted.
    default: tuple[str, ...] | None = None
    storm: StormPolicy | None = field(default_factory=StormPolicy)
    ratio: RatioPolicy | None = None


def load_config(environ: Mapping[str, str], *, plain_sinks: Sequence[str] = ()) -> RoutingConfig | None:
    """The routing file the environment names, checked; ``None`` when there is none.

    ``plain_sinks`` are the names the plain variables already use (``slack``,
    ``webhook-<host>``): routes may name them, the file may not reuse them.
    """
    inline = environ.get("CALLWATCH_CONFIG", "").strip()
    path = environ.get("CALLWATCH_CONFIG_FILE", "").strip()
    if inline and path:
        raise ConfigError("CALLWATCH_CONFIG_FILE", "set CALLWATCH_CONFIG or CALLWATCH_CONFIG_FILE, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError("CALLWATCH_CONFIG_FILE",
                              f"cannot read {path}: {type(error).__name__}: {error.args[-1]}") from None
        return parse_config(text, environ, variable="CALLWATCH_CONFIG_FILE", plain_sinks=plain_sinks)
    if inline:
        return parse_config(inline, environ, variable="CALLWATCH_CONFIG", plain_sinks=plain_sinks)
    return None


def parse_config(text: str, environ: Mapping[str, str], *, variable: str = "CALLWATCH_CONFIG",
                 plain_sinks: Sequence[str] = ()) -> RoutingConfig:
    """Parse and check one routing file; ``ConfigError(variable, "<key path>: ...")``."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as error:
        raise ConfigError(variable, f"{error.path}: is given twice (line {error.line})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid syntax"
        raise ConfigError(variable, f"is not valid YAML{where}: {problem}") from None
    try:
        return _Parser(environ, plain_sinks).config(raw, variable)
    except _KeyError as error:
        raise ConfigError(variable, f"{error.path}: {error.message}") from None


def parse_matcher(raw: Any, path: str = "match") -> Matcher:
    """A matcher from its mapping (a route's ``match``, a silence's KEY=VALUE pairs)."""
    try:
        return _matcher(raw, path)
    except _KeyError as error:
        raise ConfigError("match", f"{error.path}: {error.message}") from None


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable glob, or ``None``."""
    if not pattern:
        return "an empty glob matches nothing"
    depth = 0
    for char in pattern:
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
    if depth:
        return f"{pattern!r} opens a [ that never closes"
    return None


def masked(options: Mapping[str, Any]) -> dict[str, Any]:
    """A sink's options for a person: secrets shown as their first characters only."""
    return {key: _mask(str(value), url=key == "url") if key in SECRET_FIELDS else value
            for key, value in options.items() if key != "legacy_name"}


def _mask(value: str, *, url: bool) -> str:
    if url:
        match = re.match(r"^([a-z]+://[^/?#]+)", value)
        return (match.group(1) + "/***") if match else "***"
    return (value[:4] + "***") if len(value) > 8 else "***"


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, path: str, line: int) -> None:
        super().__init__(path)
        self.path, self.line = path, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in a mapping is an error (two
    sinks of the same name would otherwise silently become one)."""

    def construct_document(self, node: yaml.Node) -> Any:
        self._callwatch_root = node if isinstance(node, yaml.MappingNode) else None
        return super().construct_document(node)  # type: ignore[no-untyped-call]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, str | int) and key in seen:
                path = "sinks." + str(key) if _under_sinks(node, self) else str(key)
                raise _DuplicateKey(path, key_node.start_mark.line + 1)
            if isinstance(key, str | int):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _under_sinks(node: yaml.MappingNode, loader: yaml.SafeLoader) -> bool:
    """True when ``node`` is the value of the top-level ``sinks`` key."""
    root = getattr(loader, "_callwatch_root", None)
    if root is None:
        return False
    return any(isinstance(k, yaml.ScalarNode) and k.value == "sinks" and v is node
               for k, v in root.value)


class _KeyError(Exception):
    """A mistake at one key path (turned into ``ConfigError`` by ``parse_config``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class _Parser:
    def __init__(self, environ: Mapping[str, str], plain_sinks: Sequence[str]) -> None:
        self._environ = environ
        self._plain = tuple(plain_sinks)

    def config(self, raw: Any, variable: str) -> RoutingConfig:
        if raw is None:
            raw = {}
        raw = self._value(raw, "")
        top = _mapping(raw, "(top level)", _TOP_KEYS, prefix="")
        sinks = self._sinks(top.get("sinks"))
        names = set(self._plain) | {spec.name for spec in sinks}
        if not names:
            names = {"log"}
        storm = _storm(top["storm"], "storm", StormPolicy()) if "storm" in top else StormPolicy()
        ratio = _ratio(top["ratio"], "ratio", None) if "ratio" in top else None
        routes_raw = top.get("routes")
        if routes_raw is None:
            routes_raw = []
        if not isinstance(routes_raw, list):
            raise _KeyError("routes", "must be a list of routes")
        routes = tuple(self._route(item, f"routes[{index}]", names, storm, ratio)
                       for index, item in enumerate(routes_raw))
        seen: set[str] = set()
        for index, route in enumerate(routes):
            if route.name in seen or route.name == "default":
                raise _KeyError(f"routes[{index}].name", f"{route.name!r} is already a route's name")
            seen.add(route.name)
        default = None
        if "default" in top and top["default"] is not None:
            default = _sink_names(top["default"], "default", names)
        return RoutingConfig(source=variable, sinks=sinks, routes=routes, default=default,
                             storm=storm, ratio=ratio)

    def _sinks(self, raw: Any) -> tuple[SinkSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise _KeyError("sinks", "must map sink names to their settings")
        specs = []
        for name, options in raw.items():
            path = f"sinks.{name}"
            if not isinstance(name, str) or not SINK_NAME_RE.match(name):
                raise _KeyError(path, "a sink's name is 1 to 40 of a-z, 0-9 and -")
            if name in self._plain:
                owner = "SLACK_WEBHOOK_URL" if name == "slack" else "ALERT_WEBHOOK_URLS"
                raise _KeyError(path, f"the name {name!r} is already taken by {owner}; "
                                      "rename the sink or unset the variable")
            specs.append(self._sink(name, options, path))
        return tuple(specs)

    def _sink(self, name: str, raw: Any, path: str) -> SinkSpec:
        if not isinstance(raw, dict):
            raise _KeyError(path, "must be a mapping with a type, e.g. {type: slack, url: ...}")
        sink_type = raw.get("type")
        if sink_type not in SINK_FIELDS:
            raise _KeyError(f"{path}.type", f"must be one of {', '.join(SINK_FIELDS)}, not {sink_type!r}")
        required, optional = SINK_FIELDS[sink_type]
        for key in raw:
            if key != "type" and key not in required + optional:
                raise _KeyError(f"{path}.{key}", f"unknown field for a {sink_type} sink; "
                                                 f"it takes {', '.join(required + optional) or 'none'}")
        for key in required:
            if raw.get(key) in (None, "", []):
                raise _KeyError(f"{path}.{key}", f"is required for a {sink_type} sink")
        options: dict[str, Any] = {}
        for key in required + optional:
            if key in raw:
                options[key] = raw[key]
        if "url" in options:
            try:
                require_secure_url(_text(options["url"], f"{path}.url"), f"{path}.url")
            except ConfigError as error:
                raise _KeyError(f"{path}.url", error.message) from None
        if sink_type == "webhook":
            _check_secret(_text(options["secret"], f"{path}.secret"), f"{path}.secret")
        if sink_type == "pagerduty":
            _text(options["routing_key"], f"{path}.routing_key")
        if sink_type == "email":
            options["to"] = _addresses(options["to"], f"{path}.to")
            for variable in ("SMTP_URL", "ALERT_EMAIL_FROM"):
                if not self._environ.get(variable, "").strip():
                    raise _KeyError(path, f"an email sink needs {variable} to be set")
        return SinkSpec(name, sink_type, options)

    def _value(self, raw: Any, path: str) -> Any:
        """``raw`` with every ``${NAME}`` in a string value replaced (keys are left alone)."""
        if isinstance(raw, dict):
            return {key: self._value(value, f"{path}.{key}" if path else str(key))
                    for key, value in raw.items()}
        if isinstance(raw, list):
            return [self._value(item, f"{path}[{index}]") for index, item in enumerate(raw)]
        if not isinstance(raw, str):
            return raw

        def replace(found: re.Match[str]) -> str:
            name = found.group(1)
            if not _VAR_NAME_RE.match(name):
                raise _KeyError(path, f"${{{name}}} is not an environment variable's name")
            value = self._environ.get(name, "")
            if not value.strip():
                raise _KeyError(path, f"${{{name}}} is not set in the environment")
            return value.strip()

        return _VAR_RE.sub(replace, raw)

    def _route(self, raw: Any, path: str, names: set[str], storm: StormPolicy | None,
               ratio: RatioPolicy | None) -> Route:
        route = _mapping(raw, path, _ROUTE_KEYS)
        if "sinks" not in route:
            raise _KeyError(f"{path}.sinks", "is required (an empty list drops the alerts it matches)")
        name = route.get("name", path)
        if "name" in route and (not isinstance(name, str) or not ROUTE_NAME_RE.match(name)):
            raise _KeyError(f"{path}.name", "a route's name is 1 to 40 of a-z, 0-9 and -")
        follow = route.get("continue", False)
        if not isinstance(follow, bool):
            raise _KeyError(f"{path}.continue", "must be true or false")
        return Route(
            name=name,
            match=_matcher(route.get("match") or {}, f"{path}.match"),
            sinks=_sink_names(route["sinks"], f"{path}.sinks", names),
            continue_=follow,
            storm=_storm(route["storm"], f"{path}.storm", storm) if "storm" in route else storm,
            ratio=_ratio(route["ratio"], f"{path}.ratio", ratio) if "ratio" in route else ratio,
        )


def _mapping(raw: Any, path: str, allowed: Sequence[str], *, prefix: str | None = None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _KeyError(path, "must be a mapping")
    base = path if prefix is None else prefix
    for key in raw:
        if key not in allowed:
            where = f"{base}.{key}" if base else str(key)
            raise _KeyError(where, f"unknown key; use {', '.join(allowed)}")
    return raw


def _matcher(raw: Any, path: str) -> Matcher:
    if not isinstance(raw, dict):
        raise _KeyError(path, "must map matcher keys to a value or a list of values")
    conditions = []
    for key, value in raw.items():
        where = f"{path}.{key}"
        if key not in MATCH_KEYS:
            raise _KeyError(where, f"unknown matcher key; use {', '.join(MATCH_KEYS)}")
        values = value if isinstance(value, list) else [value]
        if not values:
            raise _KeyError(where, "an empty list matches nothing")
        conditions.append((key, tuple(_match_value(key, item, where) for item in values)))
    return Matcher(tuple(conditions))


def _match_value(key: str, value: Any, path: str) -> str | int:
    if key == "error_code":
        if isinstance(value, bool) or not (isinstance(value, int) or str(value).isdigit()):
            raise _KeyError(path, f"an error code is a whole number, not {value!r}")
        return int(value)
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise _KeyError(path, f"must be text, not {value!r}")
    text = str(value)
    if key == "severity" and text not in SEVERITIES:
        raise _KeyError(path, f"must be error or warning, not {text!r}")
    if key == "category" and text not in CATEGORIES:
        raise _KeyError(path, f"must be one of {', '.join(CATEGORIES)}, not {text!r}")
    if key in GLOB_KEYS:
        problem = glob_problem(text)
        if problem:
            raise _KeyError(path, f"bad glob: {problem}")
    if key == "country_code":
        text = text.upper()
    return text


def _sink_names(raw: Any, path: str, names: set[str]) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise _KeyError(path, "must be a list of sink names")
    for index, name in enumerate(raw):
        if name not in names:
            raise _KeyError(f"{path}[{index}]", f"no sink is named {name!r}; "
                                                f"known: {', '.join(sorted(names))}")
    return tuple(dict.fromkeys(raw))


def _positive_int(raw: Any, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise _KeyError(path, f"must be a whole number of at least 1, not {raw!r}")
    return raw


def _storm(raw: Any, path: str, base: StormPolicy | None) -> StormPolicy | None:
    if raw is False or raw is None or raw == "off":
        return None
    if raw is True or raw == "on":
        return base or StormPolicy()
    storm = _mapping(raw, path, _STORM_KEYS)
    start = base or StormPolicy()
    values: dict[str, Any] = {}
    for key, value in storm.items():
        if key == "group_by":
            group = value if isinstance(value, list) else [value]
            for index, item in enumerate(group):
                if item not in GROUP_KEYS:
                    raise _KeyError(f"{path}.group_by[{index}]",
                                    f"must be one of {', '.join(GROUP_KEYS)}, not {item!r}")
            values[key] = tuple(group)
        else:
            values[key] = _positive_int(value, f"{path}.{key}")
    return StormPolicy(**{**start.__dict__, **values})


def _ratio(raw: Any, path: str, base: RatioPolicy | None) -> RatioPolicy | None:
    if raw is False or raw is None or raw == "off":
        return None
    if raw is True or raw == "on":
        return base or RatioPolicy()
    ratio = _mapping(raw, path, _RATIO_KEYS)
    start = base or RatioPolicy()
    values: dict[str, Any] = {}
    for key, value in ratio.items():
        if key == "percent":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
                raise _KeyError(f"{path}.percent", f"must be a number above 0 and at most 100, not {value!r}")
            values[key] = float(value)
        else:
            values[key] = _positive_int(value, f"{path}.{key}")
    policy = RatioPolicy(**{**start.__dict__, **values})
    if not RATIO_BUCKET_S <= policy.window_s <= MAX_RATIO_WINDOW_S:
        raise _KeyError(f"{path}.window_s", f"must be between {RATIO_BUCKET_S} and "
                                            f"{MAX_RATIO_WINDOW_S} seconds, not {policy.window_s}")
    return policy


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _KeyError(path, "must be text")
    return value


def _addresses(raw: Any, path: str) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise _KeyError(path, "name at least one address")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not _EMAIL_RE.match(item):
            raise _KeyError(f"{path}[{index}]", f"{item!r} is not an email address")
    return list(items)


def _check_secret(secret: str, path: str) -> None:
    if not secret.startswith("whsec_"):
        raise _KeyError(path, "must look like whsec_<base64>")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        raise _KeyError(path, "the part after whsec_ is not base64") from None
    if len(key) < 16:
        raise _KeyError(path, "the key must be at least 16 bytes")


def glob_matches(pattern: str, value: str | None) -> bool:
    """``fnmatch`` without case folding (an issue key or a number is matched as written)."""
    return value is not None and fnmatchcase(value, pattern)
