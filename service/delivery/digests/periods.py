"""A sink's ``digest:`` option and the periods it makes, on the wall clock of its time zone.

A day may last 23 or 25 hours across a daylight-saving change; an hourly digest at
``:MM`` follows the zone's minutes too (a few zones are 30 or 45 minutes off the hour).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.errors import ConfigError

EVERY = ("day", "hour")
_AT = re.compile(r"^(?:(\d{1,2}))?:(\d{2})\Z")
_KEYS = ("every", "at", "tz")


@dataclass(frozen=True)
class DigestPolicy:
    """When a sink's digest goes out: ``every`` day or hour, ``at`` (hour, minute), ``tz``."""

    every: str = "day"
    hour: int = 8
    minute: int = 0
    tz: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def describe(self) -> str:
        if self.every == "hour":
            return f"every hour at :{self.minute:02d}"
        return f"every day at {self.hour:02d}:{self.minute:02d} {self.tz}"


def parse_digest(raw: Any, path: str) -> DigestPolicy:
    """A sink's ``digest:`` mapping; ``ConfigError`` names the key that is wrong."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, 'a mapping such as {every: day, at: "08:00", tz: Europe/Dublin}')
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"{path}.{key}", f"unknown key; use {', '.join(_KEYS)}")
    every = raw.get("every", "day")
    if every not in EVERY:
        raise ConfigError(f"{path}.every", "day or hour")
    default_at = "08:00" if every == "day" else ":00"
    at = str(raw.get("at", default_at)).strip()
    found = _AT.match(at)
    hour = int(found.group(1)) if found and found.group(1) is not None else None
    if (not found or int(found.group(2)) > 59 or (hour is not None and hour > 23)
            or (every == "day" and hour is None)):
        raise ConfigError(f"{path}.at", '"HH:MM" for a daily digest (e.g. "08:00"), ":MM" for an '
                                        'hourly one (e.g. ":15")')
    tz = str(raw.get("tz", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}.tz", f"{tz!r} is not a time zone (e.g. Europe/Dublin, "
                                        "America/New_York, UTC)") from None
    return DigestPolicy(every, hour or 0, int(found.group(2)), tz)


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC; ``key`` (the start's epoch second) names it in Redis."""

    start: datetime
    end: datetime

    @property
    def key(self) -> int:
        return int(self.start.timestamp())


def _boundary_at_or_before(policy: DigestPolicy, moment: datetime) -> datetime:
    """The last time the digest was due at or before ``moment``."""
    zone = policy.zone
    local = moment.astimezone(zone)
    if policy.every == "hour":
        candidate = local.replace(minute=policy.minute, second=0, microsecond=0)
        if candidate > local:
            candidate -= timedelta(hours=1)
        return candidate.astimezone(UTC)
    day = local.date()
    candidate = _local(day, policy, zone)
    if candidate > moment:
        candidate = _local(day - timedelta(days=1), policy, zone)
    return candidate


def _local(day: date, policy: DigestPolicy, zone: ZoneInfo) -> datetime:
    """``policy``'s wall-clock time on ``day`` in ``zone``, as UTC."""
    return datetime.combine(day, time(policy.hour, policy.minute), tzinfo=zone).astimezone(UTC)


def _shifted(policy: DigestPolicy, boundary: datetime, by: int) -> datetime:
    """The boundary ``by`` periods after ``boundary`` (before it when negative)."""
    if policy.every == "hour":
        return boundary + timedelta(hours=by)
    day = boundary.astimezone(policy.zone).date() + timedelta(days=by)
    return _local(day, policy, policy.zone)


def previous_boundary(policy: DigestPolicy, boundary: datetime) -> datetime:
    return _shifted(policy, boundary, -1)


def current_period(policy: DigestPolicy, now: datetime) -> Period:
    """The period ``now`` falls in (its digest goes out at its end)."""
    start = _boundary_at_or_before(policy, now)
    return Period(start, _shifted(policy, start, 1))


def last_finished(policy: DigestPolicy, now: datetime) -> Period:
    """The most recent period that has ended: the digest due now (or already sent)."""
    end = _boundary_at_or_before(policy, now)
    return Period(previous_boundary(policy, end), end)
