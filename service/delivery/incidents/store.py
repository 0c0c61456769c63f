"""Incident state in Redis, shared by every worker and changed only by Lua scripts.

Per route and group: the alert ids seen within the storm window (a sorted set), the
id of the incident open for the group (a string), and per alert the decision taken
for it (``send`` or the incident id, kept an hour). Per incident: one hash (route,
group, trigger, status, times, counts, and ``c:<facet>:<value>`` counters), the
first 20 CallSids (a list), and each event's JSON as first built.

``observe`` is one script per alert and route: it reads the alert's decision if one
was taken (a retried job, a worker killed after the script), so a call is folded
and counted once, and two workers never open two incidents for one group. ``check``
is one script per timer run: it emits ``updated`` or ``resolved`` at most once per
due time. Scripts build the incident's key names from ``keys.INCIDENT_PREFIX`` and
the id they read, so the store needs one Redis, not a cluster.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis import Redis

from service import keys
from service.delivery.digests.store import DigestStore
from service.delivery.incidents.grouping import Facets
from service.delivery.incidents.policy import (
    DEFAULT_STORM,
    MAX_RATIO_WINDOW_S,
    RATIO_BUCKET_S,
    RatioPolicy,
    StormPolicy,
)
from service.redis_scripts import script

#: Incidents (and their events) are kept this long after their last change.
INCIDENT_TTL_S = 7 * 86400
#: An alert's decision per route is kept this long (longer than any crash retry).
SEEN_TTL_S = 3600
#: At most this many CallSids are kept per incident.
MAX_SAMPLES = 20

_FOLD_AND_OPEN = """
local prefix, now, alert_id = ARGV[3], ARGV[2], ARGV[1]
local ttl, seen_ttl = tonumber(ARGV[19]), tonumber(ARGV[20])

local function snapshot(id)
  local inc = prefix .. id
  return {redis.call('HGETALL', inc), redis.call('LRANGE', inc .. ':samples', 0, -1)}
end

local function fold(id, opener)
  local inc = prefix .. id
  redis.call('HINCRBY', inc, 'calls', 1)
  redis.call('HINCRBY', inc, 'c:issue:' .. ARGV[22], 1)
  redis.call('HINCRBY', inc, 'c:error_code:' .. ARGV[23], 1)
  redis.call('HINCRBY', inc, 'c:sdk:' .. ARGV[24], 1)
  redis.call('HINCRBY', inc, 'c:country:' .. ARGV[25], 1)
  redis.call('HSET', inc, 'last_call_at', now)
  local samples = inc .. ':samples'
  if redis.call('LLEN', samples) < tonumber(ARGV[26]) then
    redis.call('RPUSH', samples, ARGV[21])
  end
  redis.call('EXPIRE', samples, ttl)
  redis.call('EXPIRE', inc, ttl)
  redis.call('SET', KEYS[1], id, 'EX', seen_ttl)
  return {'fold', id, opener, redis.call('HGET', inc, 'check_due') or '0', 1}
end

local function open(trigger, analysed, with_alert, percent)
  local id = ARGV[4]
  local inc = prefix .. id
  redis.call('HSET', inc, 'id', id, 'route', ARGV[5], 'group', ARGV[6], 'group_id', ARGV[7],
             'sinks', ARGV[8], 'trigger', trigger, 'status', 'open', 'opened_at', now,
             'updated_at', now, 'last_call_at', now, 'calls', 0, 'calls_at_last', 1, 'seq', 1,
             'opener', alert_id, 'update_every_s', ARGV[11],
             'resolve_after_s', (trigger == 'ratio') and ARGV[18] or ARGV[12],
             'check_due', now)
  if trigger == 'ratio' then
    redis.call('HSET', inc, 'ratio_analysed', analysed, 'ratio_with_alert', with_alert,
               'ratio_percent', percent, 'ratio_threshold', ARGV[15], 'ratio_window_s', ARGV[27])
  end
  redis.call('SET', KEYS[2], id, 'EX', ttl)
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('DEL', KEYS[3])
  local result = fold(id, 1)
  result[1] = 'opened'
  local snap = snapshot(id)
  result[6] = snap[1]
  result[7] = snap[2]
  return result
end

local seen = redis.call('GET', KEYS[1])
if seen then
  if seen == 'send' then return {'send', '', 0, '0', 0} end
  local opener = (redis.call('HGET', prefix .. seen, 'opener') == alert_id) and 1 or 0
  return {'fold', seen, opener, redis.call('HGET', prefix .. seen, 'check_due') or '0', 0}
end

local analysed, with_alert = 0, 0
if ARGV[13] == '1' then
  redis.call('HINCRBY', KEYS[5], ARGV[14], 1)
  redis.call('EXPIRE', KEYS[5], tonumber(ARGV[27]) + 60)
  local first = tonumber(ARGV[17])
  -- The group's buckets that left the window are dropped here, so the hash stays small.
  local function total(key, prune)
    local flat, sum = redis.call('HGETALL', key), 0
    for i = 1, #flat, 2 do
      if tonumber(flat[i]) >= first then
        sum = sum + tonumber(flat[i + 1])
      elseif prune then
        redis.call('HDEL', key, flat[i])
      end
    end
    return sum
  end
  with_alert = total(KEYS[5], true)
  analysed = total(KEYS[6], false)
end

local open_id = redis.call('GET', KEYS[2])
if open_id and redis.call('HGET', prefix .. open_id, 'status') == 'open' then
  return fold(open_id, 0)
end

if ARGV[13] == '1' and analysed >= tonumber(ARGV[16])
    and with_alert * 100 >= tonumber(ARGV[15]) * analysed then
  local percent = string.format('%.2f', with_alert * 100 / analysed)
  return open('ratio', analysed, with_alert, percent)
end

local calls = tonumber(ARGV[9])
if calls > 0 then
  redis.call('ZADD', KEYS[3], now, alert_id)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(tonumber(now) - tonumber(ARGV[10])))
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[10]) + 60)
  if redis.call('ZCARD', KEYS[3]) >= calls then
    return open('storm', 0, 0, '0')
  end
end
redis.call('SET', KEYS[1], 'send', 'EX', seen_ttl)
return {'send', '', 0, '0', 0}
"""

_CHECK = """
local inc, now = KEYS[1], tonumber(ARGV[1])
local status = redis.call('HGET', inc, 'status')
if status ~= 'open' then
  return {'none', redis.call('HGET', inc, 'seq') or '0'}
end
if ARGV[3] ~= '' then
  redis.call('HSET', inc, 'ratio_analysed', ARGV[3], 'ratio_with_alert', ARGV[4],
             'ratio_percent', ARGV[5])
end
local resolve_after = tonumber(redis.call('HGET', inc, 'resolve_after_s'))
local update_every = tonumber(redis.call('HGET', inc, 'update_every_s'))
local event = nil
if redis.call('HGET', inc, 'trigger') == 'ratio' then
  if ARGV[2] == '1' then
    local since = tonumber(redis.call('HGET', inc, 'below_since') or '')
    if not since then
      since = now
      redis.call('HSET', inc, 'below_since', ARGV[1])
    end
    if now - since >= resolve_after then event = 'resolved' end
  else
    redis.call('HDEL', inc, 'below_since')
  end
elseif now - tonumber(redis.call('HGET', inc, 'last_call_at')) >= resolve_after then
  event = 'resolved'
end
local calls = tonumber(redis.call('HGET', inc, 'calls'))
local at_last = tonumber(redis.call('HGET', inc, 'calls_at_last'))
if not event and calls > at_last
    and now - tonumber(redis.call('HGET', inc, 'updated_at')) >= update_every then
  event = 'updated'
end
if not event then
  return {'none', redis.call('HGET', inc, 'seq')}
end
local seq = redis.call('HINCRBY', inc, 'seq', 1)
redis.call('HSET', inc, 'updated_at', ARGV[1], 'calls_at_last', calls)
if event == 'resolved' then
  redis.call('HSET', inc, 'status', 'resolved', 'resolved_at', ARGV[1])
  if redis.call('GET', KEYS[2]) == redis.call('HGET', inc, 'id') then
    redis.call('DEL', KEYS[2])
  end
end
redis.call('EXPIRE', inc, tonumber(ARGV[6]))
redis.call('EXPIRE', inc .. ':samples', tonumber(ARGV[6]))
return {event, tostring(seq), redis.call('HGETALL', inc), redis.call('LRANGE', inc .. ':samples', 0, -1),
        tostring(calls - at_last)}
"""


@dataclass(frozen=True)
class Snapshot:
    """An incident's hash, read back (``fields``), its samples and, for one event, the
    calls since the event before."""

    fields: dict[str, str]
    samples: tuple[str, ...] = ()
    calls_since_last: int = 0

    @property
    def incident_id(self) -> str:
        return self.fields["id"]

    def counts(self, facet: str) -> dict[str, int]:
        """``{value: n}`` for one facet (``issue``, ``error_code``, ``sdk``, ``country``)."""
        prefix = f"c:{facet}:"
        found = {k[len(prefix):]: int(v) for k, v in self.fields.items() if k.startswith(prefix)}
        return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))

    def number(self, name: str, default: float = 0.0) -> float:
        value = self.fields.get(name)
        return float(value) if value not in (None, "") else default


@dataclass(frozen=True)
class Observation:
    """What the store decided for one alert on one route."""

    decision: str  # "send", "fold" or "opened"
    incident_id: str | None = None
    #: True when this alert opened the incident (its job owes the ``opened`` event).
    opener: bool = False
    #: The epoch second the incident's next check was due.
    check_due: float = 0.0
    #: False when a run before this one already counted the alert.
    counted: bool = False
    opened: Snapshot | None = None


@dataclass(frozen=True)
class CheckResult:
    """What one timer run of an incident emitted (``none``, ``updated``, ``resolved``)."""

    event: str
    sequence: int
    snapshot: Snapshot | None = None


@dataclass(frozen=True)
class RouteGroup:
    """One route's group of one alert, and the route's settings."""

    route: str
    group: dict[str, str]
    group_id: str
    sinks: tuple[str, ...]
    storm: StormPolicy | None
    ratio: RatioPolicy | None
    extra: dict[str, Any] = field(default_factory=dict)


class RidingRead(Protocol):
    """A read that rides on the count's round trip: ``queue`` one command on the
    pipeline, then ``take`` its reply."""

    def queue(self, pipe: Any) -> None: ...

    def take(self, reply: Any) -> None: ...


def new_incident_id() -> str:
    """``inc_`` and 20 random base32 characters."""
    return "inc_" + base64.b32encode(os.urandom(12)).decode().lower()[:20]


def bucket(now: float) -> int:
    return int(now // RATIO_BUCKET_S)


class IncidentStore:
    """Reads and changes incident state; every change is one Lua script."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._observe = script(redis, _FOLD_AND_OPEN)
        self._check = script(redis, _CHECK)

    @property
    def redis(self) -> Redis:
        """The connection (the desk keeps its pager groups in the same Redis)."""
        return self._redis

    def count_analysed(self, now: float, *, reads: Sequence[RidingRead] = ()) -> None:
        """One analysed call (alert or not) in the deployment-wide buckets, and ``reads``
        (what the analysis reads next, such as the silences), in one round trip."""
        current = bucket(now)
        pipe = self._redis.pipeline(transaction=False)
        for read in reads:
            read.queue(pipe)
        pipe.hincrby(keys.CALLS_ANALYSED, str(current), 1)
        # Drop the bucket that just left the longest window (gaps leave a few; sums skip them).
        pipe.hdel(keys.CALLS_ANALYSED, str(current - MAX_RATIO_WINDOW_S // RATIO_BUCKET_S - 1))
        pipe.expire(keys.CALLS_ANALYSED, MAX_RATIO_WINDOW_S + 60)
        DigestStore.count_analysed(pipe, now)  # the digests' "calls analysed", same round trip
        replies = pipe.execute()
        for read, reply in zip(reads, replies, strict=False):
            read.take(reply)

    def observe(self, where: RouteGroup, alert_id: str, facets: Facets, now: float) -> Observation:
        """Fold the alert into its group's open incident, open one, or let it go out."""
        storm, ratio = where.storm, where.ratio
        window = ratio.window_s if ratio else 0
        args: list[Any] = [
            alert_id, repr(now), keys.INCIDENT_PREFIX, new_incident_id(), where.route,
            json.dumps(where.group, separators=(",", ":")), where.group_id,
            json.dumps(list(where.sinks)),
            storm.calls if storm else 0, storm.within_s if storm else 0,
            (storm or DEFAULT_STORM).update_every_s,
            (storm or DEFAULT_STORM).resolve_after_s,
            "1" if ratio else "0", str(bucket(now)),
            repr(ratio.percent if ratio else 0.0), ratio.min_calls if ratio else 0,
            str(bucket(now - window) + 1),
            ratio.resolve_after_s if ratio else (storm or DEFAULT_STORM).resolve_after_s,
            INCIDENT_TTL_S, SEEN_TTL_S,
            facets.call_sid, facets.issue, facets.error_code, facets.sdk, facets.country, MAX_SAMPLES,
            window,
        ]
        result = self._observe(keys=[
            keys.storm_seen(where.route, alert_id), keys.incident_slot(where.route, where.group_id),
            keys.storm_recent(where.route, where.group_id), keys.INCIDENTS,
            keys.ratio_alerts(where.route, where.group_id), keys.CALLS_ANALYSED,
        ], args=args)
        decision, incident_id, opener, check_due, counted = (_text(v) for v in result[:5])
        opened = _snapshot(result[5], result[6]) if len(result) > 5 else None
        if opened is not None:
            opened = Snapshot(opened.fields, opened.samples, int(opened.number("calls")))
        return Observation(decision, incident_id or None, opener == "1", float(check_due or 0),
                           counted == "1", opened)

    def ratio_counts(self, route: str, group_id: str, window_s: int, now: float) -> tuple[int, int]:
        """(analysed, with an alert of the group) within the last ``window_s``."""
        first = bucket(now - window_s) + 1
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(keys.CALLS_ANALYSED)
        pipe.hgetall(keys.ratio_alerts(route, group_id))
        analysed, alerts = pipe.execute()
        return _window_sum(analysed, first), _window_sum(alerts, first)

    def check(self, incident_id: str, now: float, *, below: bool | None = None,
              ratio: tuple[int, int, float] | None = None) -> CheckResult:
        """Emit ``updated`` or ``resolved`` if due; ``below``: a ratio incident's share is
        under half its threshold now."""
        snapshot = self.read(incident_id)
        if snapshot is None:
            return CheckResult("none", 0)
        slot = keys.incident_slot(snapshot.fields["route"], snapshot.fields["group_id"])
        ratio_args = [str(ratio[0]), str(ratio[1]), f"{ratio[2]:.2f}"] if ratio else ["", "", ""]
        result = self._check(keys=[keys.incident(incident_id), slot],
                             args=[repr(now), "1" if below else "0", *ratio_args, INCIDENT_TTL_S])
        event, sequence = _text(result[0]), int(_text(result[1]) or 0)
        if event == "none":
            return CheckResult(event, sequence)
        snap = _snapshot(result[2], result[3])
        return CheckResult(event, sequence, Snapshot(snap.fields, snap.samples, int(_text(result[4]))))

    def set_check_due(self, incident_id: str, due: float) -> None:
        self._redis.hset(keys.incident(incident_id), "check_due", repr(due))

    def read(self, incident_id: str) -> Snapshot | None:
        """The incident's current state (None when unknown or expired)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(keys.incident(incident_id))
        pipe.lrange(keys.incident_samples(incident_id), 0, -1)
        fields, samples = pipe.execute()
        if not fields:
            return None
        return _snapshot(_flat(fields), samples)

    def recent(self, since: float, limit: int = 50) -> list[Snapshot]:
        """Incidents opened since ``since`` or still open, newest first."""
        self._redis.zremrangebyscore(keys.INCIDENTS, "-inf", f"({since - INCIDENT_TTL_S}")
        ids = [_text(i) for i in self._redis.zrevrange(keys.INCIDENTS, 0, 4 * limit)]
        found = [s for s in (self.read(i) for i in ids) if s is not None]
        shown = [s for s in found if s.fields.get("status") == "open"
                 or s.number("resolved_at") >= since or s.number("opened_at") >= since]
        return shown[:limit]

    def save_event(self, incident_id: str, sequence: int, message: dict[str, Any]) -> dict[str, Any]:
        """Keep the event as first built; a rebuilt one (a retried job) yields the kept one."""
        key = keys.incident_event(incident_id, sequence)
        text = json.dumps(message, separators=(",", ":"))
        if self._redis.set(key, text, nx=True, ex=INCIDENT_TTL_S):
            return message
        kept = self._redis.get(key)
        return json.loads(kept) if kept else message

    def saved_event(self, incident_id: str, sequence: int) -> dict[str, Any] | None:
        kept = self._redis.get(keys.incident_event(incident_id, sequence))
        return json.loads(kept) if kept else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _flat(fields: dict[Any, Any]) -> list[Any]:
    return [item for pair in fields.items() for item in pair]


def _snapshot(flat: Sequence[Any], samples: Sequence[Any]) -> Snapshot:
    items = [_text(v) for v in flat]
    return Snapshot(dict(zip(items[::2], items[1::2], strict=True)), tuple(_text(s) for s in samples))


def _window_sum(buckets: dict[Any, Any], first: int) -> int:
    return sum(int(v) for k, v in buckets.items() if int(_text(k)) >= first)
