"""The routing file's ``storm`` and ``ratio`` sections (top level or per route): when a
group of failing calls becomes one incident (``service.delivery.incidents.policy``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from service.delivery.incidents.policy import (
    GROUP_KEYS,
    MAX_RATIO_WINDOW_S,
    RATIO_BUCKET_S,
    RatioPolicy,
    StormPolicy,
)
from service.routing_file.paths import KeyPathError, mapping

_STORM_KEYS = ("calls", "within_s", "group_by", "update_every_s", "resolve_after_s")
_RATIO_KEYS = ("percent", "min_calls", "window_s", "resolve_after_s")
_P = TypeVar("_P", StormPolicy, RatioPolicy)


def _positive_int(raw: Any, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise KeyPathError(path, f"must be a whole number of at least 1, not {raw!r}")
    return raw


def _section(raw: Any, path: str, base: _P | None, defaults: type[_P], allowed: tuple[str, ...],
             value: Callable[[str, Any], Any]) -> _P | None:
    """A section over ``base`` (the enclosing one; none: ``defaults``): off, on, or the keys
    it gives changed, each checked by ``value(key, raw value)``."""
    if raw is False or raw is None or raw == "off":
        return None
    start = base or defaults()
    if raw is True or raw == "on":
        return start
    given = mapping(raw, path, allowed)
    return replace(start, **{key: value(key, item) for key, item in given.items()})


def storm(raw: Any, path: str, base: StormPolicy | None) -> StormPolicy | None:
    """A ``storm`` section over ``base`` (the enclosing one): off, on, or changed values."""
    def value(key: str, raw_value: Any) -> Any:
        if key != "group_by":
            return _positive_int(raw_value, f"{path}.{key}")
        group = raw_value if isinstance(raw_value, list) else [raw_value]
        for index, item in enumerate(group):
            if item not in GROUP_KEYS:
                raise KeyPathError(f"{path}.group_by[{index}]",
                                   f"must be one of {', '.join(GROUP_KEYS)}, not {item!r}")
        return tuple(group)

    return _section(raw, path, base, StormPolicy, _STORM_KEYS, value)


def ratio(raw: Any, path: str, base: RatioPolicy | None) -> RatioPolicy | None:
    """A ``ratio`` section over ``base`` (the enclosing one): off, on, or changed values."""
    def value(key: str, raw_value: Any) -> Any:
        if key != "percent":
            return _positive_int(raw_value, f"{path}.{key}")
        if (isinstance(raw_value, bool) or not isinstance(raw_value, (int, float))
                or not 0 < raw_value <= 100):
            raise KeyPathError(f"{path}.percent",
                               f"must be a number above 0 and at most 100, not {raw_value!r}")
        return float(raw_value)

    policy = _section(raw, path, base, RatioPolicy, _RATIO_KEYS, value)
    if policy is not None and not RATIO_BUCKET_S <= policy.window_s <= MAX_RATIO_WINDOW_S:
        raise KeyPathError(f"{path}.window_s", f"must be between {RATIO_BUCKET_S} and "
                                               f"{MAX_RATIO_WINDOW_S} seconds, not {policy.window_s}")
    return policy
