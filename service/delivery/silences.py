"""Silences: "send nothing that matches this for the next two hours", kept in Redis.

A silence is a matcher (the same keys as a route's ``match``), an end time, a
comment and an author. All silences live in one sorted set (``keys.SILENCES``),
each member the silence's JSON and its score the unix time it ends, so checking
an alert is one Redis read (``ZRANGEBYSCORE now +inf``, on the round trip that counts
the analysed call: ``InForce``) in whichever worker analyses it: a silence takes
effect at once everywhere, without a restart. An ended silence is no longer read; it
is removed at the next write, and the key expires with the last silence it holds, so
nothing outlives its silences.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis as redis_lib

from service import keys
from service.analysis.alert import Alert
from service.decisions import Drop
from service.delivery.routing import Router, matches
from service.errors import ConfigError, InvalidInput
from service.redis_scripts import script
from service.routing_file.matchers import Matcher, parse_matcher

#: The longest a silence may last: a forgotten silence must not hide alerts for ever.
MAX_DURATION = timedelta(days=30)
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Silence:
    """One silence: what it matches, until when, and who set it and why."""

    id: str
    matcher: Matcher
    starts_at: datetime
    ends_at: datetime
    comment: str
    author: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "match": self.matcher.to_json(),
                "starts_at": self.starts_at.isoformat(), "ends_at": self.ends_at.isoformat(),
                "comment": self.comment, "author": self.author}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Silence:
        return cls(id=str(data["id"]), matcher=parse_matcher(data["match"]),
                   starts_at=datetime.fromisoformat(data["starts_at"]),
                   ends_at=datetime.fromisoformat(data["ends_at"]),
                   comment=str(data.get("comment") or ""), author=data.get("author"))


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``: a positive duration up to ``MAX_DURATION``."""
    compact = text.strip().lower()
    if not compact or _DURATION_PART.sub("", compact):
        raise InvalidInput(f"--for {text!r}: use a duration such as 30m, 2h or 1d")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(compact))
    if seconds <= 0:
        raise InvalidInput(f"--for {text!r}: a silence must last some time")
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidInput(f"--for {text!r}: at most {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def parse_pairs(pairs: Sequence[str]) -> Matcher:
    """``KEY=VALUE`` pairs (a repeated key or ``a,b`` means any of) as a matcher."""
    raw: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInput(f"{pair!r} is not KEY=VALUE (e.g. error_code=31005)")
        raw.setdefault(key.strip(), []).extend(v.strip() for v in value.split(",") if v.strip())
    if not raw:
        raise InvalidInput("name at least one KEY=VALUE matcher: a silence of everything is refused")
    try:
        return parse_matcher(raw, "silence")
    except ConfigError as error:
        raise InvalidInput(error.message) from None


def _utc_now() -> datetime:
    return datetime.now(UTC)


# KEYS[1] the silences; ARGV: member, its end, now, '"id": "<id>"'. The active member
# with that id if there is one, else the new member is added (and nil returned).
_ADD_ONCE = """
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[3], '+inf')) do
  if string.find(member, ARGV[4], 1, true) then return member end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(ARGV[2])) + 1, 'GT')
redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(ARGV[2])) + 1, 'NX')
return false
"""


class Silences:
    """The deployment's silences in Redis."""

    def __init__(self, redis: redis_lib.Redis, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._redis = redis
        self._clock = clock
        self._add_once = script(redis, _ADD_ONCE)

    def add(self, matcher: Matcher, duration: timedelta, comment: str,
            author: str | None = None, *, silence_id: str | None = None) -> Silence:
        """Store a new silence, active at once in every worker; returns it (with its id).
        With ``silence_id`` (a Slack click's), a silence with that id still active is
        returned instead of adding another: a repeated request adds one silence."""
        now = self._clock().astimezone(UTC).replace(microsecond=0)
        silence = Silence(id=silence_id or "sil_" + secrets.token_hex(6), matcher=matcher,
                          starts_at=now, ends_at=now + duration, comment=comment, author=author)
        ends = silence.ends_at.timestamp()
        if silence_id is not None:
            found = self._add_once(keys=[keys.SILENCES], args=[
                json.dumps(silence.to_json(), sort_keys=True), ends, now.timestamp(),
                json.dumps({"id": silence_id})[1:-1]])
            return Silence.from_json(json.loads(found)) if found else silence
        pipe = self._redis.pipeline(transaction=True)
        pipe.zremrangebyscore(keys.SILENCES, "-inf", now.timestamp())
        pipe.zadd(keys.SILENCES, {json.dumps(silence.to_json(), sort_keys=True): ends})
        pipe.expireat(keys.SILENCES, int(ends) + 1, gt=True)
        pipe.expireat(keys.SILENCES, int(ends) + 1, nx=True)
        pipe.execute()
        return silence

    def active(self) -> list[Silence]:
        """Every silence that has not ended, soonest end first (one Redis read)."""
        return _parse(self._members(self._clock().timestamp()))

    def in_force(self) -> InForce:
        """The silences one analysis screens its alert against, read once (see ``InForce``)."""
        return InForce(self)

    def matching(self, alert: Alert) -> Silence | None:
        """The first active silence that matches ``alert``, or ``None``."""
        return self.in_force().matching(alert)

    def expire(self, silence_id: str) -> bool:
        """End a silence now; False when no active silence has that id."""
        for member in self._members(self._clock().timestamp()):
            if json.loads(member).get("id") == silence_id:
                return bool(self._redis.zrem(keys.SILENCES, member))
        return False

    def _members(self, now: float) -> list[bytes]:
        """The stored JSON of every silence that ends after ``now``."""
        return list(self._queue_members(self._redis, now))  # type: ignore[arg-type]

    def _queue_members(self, pipe: Any, now: float | None = None) -> Any:
        """``_members``' read, on ``pipe`` (a pipeline, whose reply is that list, or the client)."""
        return pipe.zrangebyscore(keys.SILENCES,
                                  f"({self._clock().timestamp() if now is None else now}", "+inf")


class InForce:
    """The silences in force for one analysis, read once: on the round trip that counts
    the call (``IncidentStore.count_analysed`` calls ``queue`` then ``take``), else when
    first asked. One per job, never kept: a silence takes effect for the next analysis."""

    def __init__(self, silences: Silences) -> None:
        self._silences = silences
        self._active: list[Silence] | None = None

    def queue(self, pipe: Any) -> None:
        self._silences._queue_members(pipe)

    def take(self, reply: list[bytes]) -> None:
        self._active = _parse(reply)

    def matching(self, alert: Alert) -> Silence | None:
        """The first silence in force that matches ``alert``, or ``None``."""
        if self._active is None:
            self._active = self._silences.active()
        return next((s for s in self._active if matches(s.matcher, alert)), None)


def _parse(members: list[bytes]) -> list[Silence]:
    silences = []
    for member in members:
        try:
            silences.append(Silence.from_json(json.loads(member)))
        except (ValueError, KeyError, TypeError, ConfigError):
            continue  # written by another version with a key this one does not know
    return silences


def screen(alert: Alert, *, router: Router, silences: Silences | InForce | None) -> Drop | None:
    """Why ``alert`` must not be sent, if so: an active silence matches it (checked first:
    the operator asked for quiet), no route and no ``default`` takes it, or the routes that
    take it have no sinks (``dropped``, naming the first such route)."""
    silence = silences.matching(alert) if silences is not None else None
    if silence is not None:
        return Drop("silenced", {"silence_id": silence.id})
    taken = router.route(alert)
    if not taken:
        return Drop("unrouted")
    if not any(match.sinks for match in taken):
        return Drop("dropped", {"route": taken[0].route})
    return None
