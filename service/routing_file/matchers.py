"""Matchers: what an alert must show for a route or a silence to take it.

Parsing builds a ``Matcher`` (a route's ``match``, a silence's KEY=VALUE pairs); the
router, silences and ``routes test`` read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from service.analysis.catalogue import CATEGORIES
from service.errors import ConfigError
from service.routing_file.paths import KeyPathError

SEVERITIES = ("error", "warning")
#: Matcher keys whose values are globs (``fnmatch`` syntax, case-sensitive).
GLOB_KEYS = ("issue", "from", "to", "identity")
#: ``identity`` is the Voice SDK party's identity (``alice`` for ``client:alice``, either end).
MATCH_KEYS = ("severity", "issue", "error_code", "category", "edge", "direction", "from", "to",
              "account_sid", "sdk_type", "country_code", "identity")


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


def parse_matcher(raw: Any, path: str = "match") -> Matcher:
    """A matcher from its mapping (a route's ``match``, a silence's KEY=VALUE pairs)."""
    try:
        return matcher(raw, path)
    except KeyPathError as error:
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


def glob_matches(pattern: str, value: str | None) -> bool:
    """``fnmatch`` without case folding (an issue key or a number is matched as written)."""
    return value is not None and fnmatchcase(value, pattern)


def matcher(raw: Any, path: str) -> Matcher:
    """A matcher from its mapping; ``KeyPathError`` at the first bad key or value."""
    if not isinstance(raw, dict):
        raise KeyPathError(path, "must map matcher keys to a value or a list of values")
    conditions = []
    for key, value in raw.items():
        where = f"{path}.{key}"
        if key not in MATCH_KEYS:
            raise KeyPathError(where, f"unknown matcher key; use {', '.join(MATCH_KEYS)}")
        values = value if isinstance(value, list) else [value]
        if not values:
            raise KeyPathError(where, "an empty list matches nothing")
        conditions.append((key, tuple(_match_value(key, item, where) for item in values)))
    return Matcher(tuple(conditions))


def _match_value(key: str, value: Any, path: str) -> str | int:
    if key == "error_code":
        if isinstance(value, bool) or not (isinstance(value, int) or str(value).isdigit()):
            raise KeyPathError(path, f"an error code is a whole number, not {value!r}")
        return int(value)
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise KeyPathError(path, f"must be text, not {value!r}")
    text = str(value)
    if key == "severity" and text not in SEVERITIES:
        raise KeyPathError(path, f"must be error or warning, not {text!r}")
    if key == "category" and text not in CATEGORIES:
        raise KeyPathError(path, f"must be one of {', '.join(CATEGORIES)}, not {text!r}")
    if key in GLOB_KEYS:
        problem = glob_problem(text)
        if problem:
            raise KeyPathError(path, f"bad glob: {problem}")
    if key == "country_code":
        text = text.upper()
    return text
