"""Acknowledging an incident: "someone is on it", said once, kept with the incident.

An acknowledgement is two fields of the incident's hash (``acknowledged_by``,
``acknowledged_at``) written by one Lua script that refuses an unknown (or expired)
incident and keeps the first acknowledgement: a second click, or a second person,
learns who was first instead of overwriting it. The timer reads the fields to stop
``updated`` messages to chat sinks; ``callwatch incidents list`` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis

from service import keys
from service.redis_scripts import script

#: ``inc_`` and 20 base32 characters, as ``store.new_incident_id`` makes them.
INCIDENT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz234567")

_ACKNOWLEDGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown', '', ''} end
local by = redis.call('HGET', KEYS[1], 'acknowledged_by')
if by then return {'already', by, redis.call('HGET', KEYS[1], 'acknowledged_at') or ''} end
redis.call('HSET', KEYS[1], 'acknowledged_by', ARGV[1], 'acknowledged_at', ARGV[2])
return {'acknowledged', ARGV[1], ARGV[2]}
"""


@dataclass(frozen=True)
class Acknowledgement:
    """Who acknowledged an incident and when; ``new`` is False when someone was first."""

    incident_id: str
    by: str
    at: datetime
    new: bool = True


def is_incident_id(value: str) -> bool:
    """Whether ``value`` looks like an incident id (``inc_`` and 20 base32 characters)."""
    rest = value.removeprefix("inc_")
    return value.startswith("inc_") and len(rest) == 20 and set(rest) <= INCIDENT_ID_CHARS


def acknowledge(redis: Redis, incident_id: str, by: str, now: datetime) -> Acknowledgement | None:
    """Mark the incident acknowledged by ``by``; None when no such incident is kept.
    The first acknowledgement stays: a later one returns it with ``new=False``."""
    acknowledge_once = script(redis, _ACKNOWLEDGE)
    at = now.astimezone(UTC).replace(microsecond=0)
    result = acknowledge_once(keys=[keys.incident(incident_id)], args=[by, repr(at.timestamp())])
    state, who, when = (v.decode() if isinstance(v, bytes) else str(v) for v in result)
    if state == "unknown":
        return None
    return Acknowledgement(incident_id, who, datetime.fromtimestamp(float(when or 0), UTC),
                           new=state == "acknowledged")


def acknowledged_by(fields: dict[str, str]) -> str | None:
    """Who acknowledged the incident whose hash is ``fields`` (None: nobody yet)."""
    return fields.get("acknowledged_by") or None
