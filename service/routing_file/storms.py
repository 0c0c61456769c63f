"""The routing file's ``storm`` and ``ratio`` sections (top level or per route): when a
group of failing calls becomes one incident (``service.delivery.incidents.policy``)."""

from __future__ import annotations

from typing import Any

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


def _positive_int(raw: Any, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise KeyPathError(path, f"must be a whole number of at least 1, not {raw!r}")
    return raw


def storm(raw: Any, path: str, base: StormPolicy | None) -> StormPolicy | None:
    """A ``storm`` section over ``base`` (the enclosing one): off, on, or changed values."""
    if raw is False or raw is None or raw == "off":
        return None
    if raw is True or raw == "on":
        return base or StormPolicy()
    given = mapping(raw, path, _STORM_KEYS)
    start = base or StormPolicy()
    values: dict[str, Any] = {}
    for key, value in given.items():
        if key == "group_by":
            group = value if isinstance(value, list) else [value]
            for index, item in enumerate(group):
                if item not in GROUP_KEYS:
                    raise KeyPathError(f"{path}.group_by[{index}]",
                                       f"must be one of {', '.join(GROUP_KEYS)}, not {item!r}")
            values[key] = tuple(group)
        else:
            values[key] = _positive_int(value, f"{path}.{key}")
    return StormPolicy(**{**start.__dict__, **values})


def ratio(raw: Any, path: str, base: RatioPolicy | None) -> RatioPolicy | None:
    """A ``ratio`` section over ``base`` (the enclosing one): off, on, or changed values."""
    if raw is False or raw is None or raw == "off":
        return None
    if raw is True or raw == "on":
        return base or RatioPolicy()
    given = mapping(raw, path, _RATIO_KEYS)
    start = base or RatioPolicy()
    values: dict[str, Any] = {}
    for key, value in given.items():
        if key == "percent":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
                raise KeyPathError(f"{path}.percent",
                                   f"must be a number above 0 and at most 100, not {value!r}")
            values[key] = float(value)
        else:
            values[key] = _positive_int(value, f"{path}.{key}")
    policy = RatioPolicy(**{**start.__dict__, **values})
    if not RATIO_BUCKET_S <= policy.window_s <= MAX_RATIO_WINDOW_S:
        raise KeyPathError(f"{path}.window_s", f"must be between {RATIO_BUCKET_S} and "
                                               f"{MAX_RATIO_WINDOW_S} seconds, not {policy.window_s}")
    return policy
