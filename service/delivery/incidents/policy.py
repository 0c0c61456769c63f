"""A route's storm and ratio settings (the routing file's ``storm:`` and ``ratio:``).

``storm_from_config`` and ``ratio_from_config`` read one ``storm:`` / ``ratio:`` value
(a mapping, or ``false``/``off``) and refuse bad input with a ``ConfigError`` naming
the key. ``policies_from_env`` reads the top-level ``storm:`` and ``ratio:`` of
``CALLWATCH_CONFIG`` when it is JSON (a subset of YAML), for the implicit ``default``
route; the routing file's own parser supersedes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from service.errors import ConfigError

#: Keys ``group_by`` may name.
GROUP_KEYS = ("issue", "error_code", "category", "edge", "sdk_type", "country_code", "account_sid")
#: The longest ratio window: the analysed-call buckets are kept this long.
MAX_RATIO_WINDOW_S = 3600
#: Ratio counts are kept in buckets of this many seconds.
RATIO_BUCKET_S = 10


@dataclass(frozen=True)
class StormPolicy:
    """When a group reaches ``calls`` alerts within ``within_s``, an incident opens."""

    calls: int = 10
    within_s: int = 120
    group_by: tuple[str, ...] = ("issue",)
    update_every_s: int = 300
    resolve_after_s: int = 600


@dataclass(frozen=True)
class RatioPolicy:
    """An incident when ``percent`` % of the calls analysed in ``window_s`` had an alert.

    It resolves when the share stays under half of ``percent`` for ``resolve_after_s``.
    Groups are the route's storm ``group_by`` (``issue`` when the storm is off).
    """

    percent: float = 5.0
    min_calls: int = 40
    window_s: int = 600
    resolve_after_s: int = 600


_OFF = (False, "off", "false", "no")


def storm_from_config(value: Any, where: str = "storm") -> StormPolicy | None:
    """A ``storm:`` value: a mapping of the fields (defaults for the rest), or off."""
    if value in _OFF:
        return None
    if value is None or value is True or value == "on":
        return StormPolicy()
    data = _mapping(value, where, StormPolicy)
    group_by = data.pop("group_by", StormPolicy.group_by)
    if not isinstance(group_by, list | tuple) or any(k not in GROUP_KEYS for k in group_by):
        raise ConfigError(f"{where}.group_by", f"a list of {', '.join(GROUP_KEYS)} (or [])")
    numbers = {name: _positive(data[name], f"{where}.{name}", whole=True) for name in data}
    return StormPolicy(group_by=tuple(dict.fromkeys(group_by)), **numbers)  # type: ignore[arg-type]


def ratio_from_config(value: Any, where: str = "ratio") -> RatioPolicy | None:
    """A ``ratio:`` value: a mapping of the fields (defaults for the rest), or off."""
    if value is None or value in _OFF:
        return None
    data = _mapping(value, where, RatioPolicy)
    values = {name: _positive(data[name], f"{where}.{name}", whole=name != "percent")
              for name in data}
    policy = RatioPolicy(**values)  # type: ignore[arg-type]
    if policy.percent > 100:
        raise ConfigError(f"{where}.percent", "a share between 0 and 100")
    if policy.window_s > MAX_RATIO_WINDOW_S or policy.window_s < RATIO_BUCKET_S:
        raise ConfigError(f"{where}.window_s",
                          f"between {RATIO_BUCKET_S} and {MAX_RATIO_WINDOW_S} seconds")
    return policy


def policies_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """``{"storm": ..., "ratio": ...}`` from a JSON ``CALLWATCH_CONFIG`` (defaults otherwise)."""
    text = (env.get("CALLWATCH_CONFIG") or "").strip()
    if not text.startswith("{"):
        return {}
    try:
        config = json.loads(text)
    except ValueError:
        return {}  # YAML proper: the routing file's parser reads it
    policies: dict[str, Any] = {}
    if "storm" in config:
        policies["storm"] = storm_from_config(config["storm"])
    if "ratio" in config:
        policies["ratio"] = ratio_from_config(config["ratio"])
    return policies


def _mapping(value: Any, where: str, kind: type) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, "a mapping of settings, or off")
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown setting; known: {', '.join(sorted(known))}")
    return dict(value)


def _positive(value: Any, where: str, *, whole: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 \
            or (whole and value != int(value)):
        raise ConfigError(where, "a positive whole number" if whole else "a positive number")
    return int(value) if whole else float(value)
