"""Digests: one summary per day (or hour) for a sink, instead of a message per alert.

A sink with ``digest: {every: day, at: "08:00", tz: Europe/Dublin}`` (or ``every: hour``,
``at: ":15"``) takes its alerts and incident events into per-period counters in Redis
(``DigestingSink``: its ``send`` records, it posts nothing). Once a period has ended,
``send_due`` builds the ``Digest`` (calls analysed, alerts by issue, by agent and by
country, incidents, the worst calls) and sends it through the sink's own renderer,
exactly once per sink and period across every worker and restart: the period's
message id goes through the delivery ledger (a lease while sending, then "delivered"
for a week). A period in which nothing happened is marked done and sends nothing.

Periods follow the wall clock of ``tz`` (zoneinfo), so "08:00 Europe/Dublin" stays
08:00 across daylight-saving changes; a day may then last 23 or 25 hours. Calls
analysed are counted deployment-wide in 15-minute buckets (every time zone's offset is
a multiple of 15 minutes) so any period in any zone can add them up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from redis import Redis

from service import keys
from service.analysis.alert import Alert
from service.analysis.headline import identity
from service.delivery.incidents.grouping import first_issue
from service.delivery.ledger import DeliveryLedger
from service.errors import ConfigError, DeliveryRejected, DeliveryRetryable

log = structlog.get_logger(__name__)

EVERY = ("day", "hour")
#: Calls-analysed buckets (s) and how long they are kept.
ANALYSED_BUCKET_S = 900
ANALYSED_KEEP_S = 8 * 86400
#: A period's counters outlive its end by this much (a late digest can still read them).
COUNTERS_KEEP_S = 7 * 86400
#: Worst calls kept per period, and values shown per breakdown.
WORST_KEPT = 5
TOP = 10
#: How long one worker may spend sending a digest before another may try.
SEND_LEASE_S = 60.0
_AT = re.compile(r"^(?:(\d{1,2}))?:(\d{2})\Z")
_KEYS = ("every", "at", "tz")

_RECORD_ALERT = """
if redis.call('HSETNX', KEYS[1], 'seen:' .. ARGV[1], 1) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'alerts', 1)
redis.call('HINCRBY', KEYS[1], 'issue:' .. ARGV[2], 1)
redis.call('HINCRBY', KEYS[1], 'agent:' .. ARGV[3], 1)
redis.call('HINCRBY', KEYS[1], 'country:' .. ARGV[4], 1)
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[8]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return 1
"""


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


def _next_boundary(policy: DigestPolicy, boundary: datetime) -> datetime:
    if policy.every == "hour":
        return boundary + timedelta(hours=1)
    day = boundary.astimezone(policy.zone).date() + timedelta(days=1)
    return _local(day, policy, policy.zone)


def _previous_boundary(policy: DigestPolicy, boundary: datetime) -> datetime:
    if policy.every == "hour":
        return boundary - timedelta(hours=1)
    day = boundary.astimezone(policy.zone).date() - timedelta(days=1)
    return _local(day, policy, policy.zone)


def current_period(policy: DigestPolicy, now: datetime) -> Period:
    """The period ``now`` falls in (its digest goes out at its end)."""
    start = _boundary_at_or_before(policy, now)
    return Period(start, _next_boundary(policy, start))


def last_finished(policy: DigestPolicy, now: datetime) -> Period:
    """The most recent period that has ended: the digest due now (or already sent)."""
    end = _boundary_at_or_before(policy, now)
    return Period(_previous_boundary(policy, end), end)


@dataclass(frozen=True)
class WorstCall:
    call_sid: str
    summary: str
    severity: str


@dataclass(frozen=True)
class Digest:
    """One sink's summary of one period."""

    sink: str
    policy: DigestPolicy
    period: Period
    calls_analysed: int
    alerts: int
    by_issue: dict[str, int] = field(default_factory=dict)
    by_agent: dict[str, int] = field(default_factory=dict)
    by_country: dict[str, int] = field(default_factory=dict)
    #: One line per incident the sink heard of (its latest event), by incident id.
    incidents: dict[str, str] = field(default_factory=dict)
    worst: tuple[WorstCall, ...] = ()

    @property
    def is_empty(self) -> bool:
        """Nothing happened: no call analysed, no alert, no incident."""
        return not (self.calls_analysed or self.alerts or self.incidents)

    @property
    def message_id(self) -> str:
        """The period's id in the delivery ledger (one digest per sink and period)."""
        return f"digest:{self.period.key}"


def _score(alert: Alert) -> float:
    """Errors weigh most, then warnings, then issue counts: a higher score is a worse call."""
    errors = sum(1 for issue in alert.issues if issue.severity == "error")
    return errors * 1_000_000 + (len(alert.issues) - errors) * 1_000 + sum(
        min(issue.count, 999) for issue in alert.issues)


class DigestStore:
    """Per-sink, per-period counters in Redis (and the deployment's calls analysed)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record = redis.register_script(_RECORD_ALERT)

    @staticmethod
    def count_analysed(pipe: Any, now: float) -> None:
        """Queue, on ``pipe``, one analysed call in the 15-minute buckets."""
        bucket = int(now // ANALYSED_BUCKET_S)
        pipe.hincrby(keys.DIGEST_ANALYSED, str(bucket), 1)
        pipe.hdel(keys.DIGEST_ANALYSED, str(bucket - ANALYSED_KEEP_S // ANALYSED_BUCKET_S))
        pipe.expire(keys.DIGEST_ANALYSED, ANALYSED_KEEP_S)

    def record_alert(self, sink: str, period: Period, alert: Alert) -> bool:
        """Count ``alert`` in the sink's period; False when it was already counted."""
        issue = first_issue(alert)
        country = alert.client.country_code if alert.client else None
        worst = json.dumps({"call_sid": alert.call.call_sid, "summary": alert.summary,
                            "severity": alert.severity}, separators=(",", ":"), sort_keys=True)
        ttl = self._ttl(period)
        counts, worst_key = keys.digest(sink, period.key), keys.digest(sink, period.key) + ":worst"
        return bool(self._record(keys=[counts, worst_key], args=[
            alert.alert_id, issue.key if issue else "none", identity(alert.call) or "none",
            country or "none", repr(_score(alert)), worst, ttl, WORST_KEPT]))

    def record_incident(self, sink: str, period: Period, incident_id: str, line: str) -> None:
        """Keep the latest line about an incident the sink heard of in this period."""
        key = keys.digest(sink, period.key) + ":incidents"
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, incident_id, line)
        pipe.expire(key, self._ttl(period))
        pipe.execute()

    def read(self, sink: str, policy: DigestPolicy, period: Period) -> Digest:
        base = keys.digest(sink, period.key)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(base)
        pipe.zrevrange(base + ":worst", 0, WORST_KEPT - 1)
        pipe.hgetall(base + ":incidents")
        pipe.hgetall(keys.DIGEST_ANALYSED)
        counts_raw, worst_raw, incidents_raw, analysed_raw = pipe.execute()
        counts = {_text(k): int(v) for k, v in counts_raw.items() if not _text(k).startswith("seen:")}
        first = period.start.timestamp() // ANALYSED_BUCKET_S
        last = period.end.timestamp() // ANALYSED_BUCKET_S
        analysed = sum(int(v) for k, v in analysed_raw.items() if first <= int(_text(k)) < last)
        worst = tuple(WorstCall(**json.loads(_text(m))) for m in worst_raw)
        return Digest(sink=sink, policy=policy, period=period, calls_analysed=analysed,
                      alerts=counts.get("alerts", 0), by_issue=_facet(counts, "issue:"),
                      by_agent=_facet(counts, "agent:"), by_country=_facet(counts, "country:"),
                      incidents={_text(k): _text(v) for k, v in sorted(incidents_raw.items())},
                      worst=worst)

    @staticmethod
    def _ttl(period: Period) -> int:
        return int(max(period.end.timestamp() - datetime.now(UTC).timestamp(), 0)) + COUNTERS_KEEP_S


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _facet(counts: Mapping[str, int], prefix: str) -> dict[str, int]:
    found = {k[len(prefix):]: n for k, n in counts.items() if k.startswith(prefix)}
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


class DigestTarget(Protocol):
    """What sends a digest: the sink's own renderer and its delivery path."""

    def __call__(self, digest: Digest) -> None: ...


@dataclass(frozen=True)
class DigestSink:
    """A configured sink that takes digests: its name, its policy, how a digest is sent."""

    name: str
    policy: DigestPolicy
    send: DigestTarget
    #: The sink's pace (Slack: a message a second), shared with its alerts.
    pace_s: float | None = None


class Turn(Protocol):
    """``service.delivery.pace.Pace.reserve``: 0.0 when the sink's turn is taken, else the wait."""

    def __call__(self, sink: str, interval_s: float) -> float: ...


def send_due(sinks: Iterable[DigestSink], *, store: DigestStore, ledger: DeliveryLedger,
             now: datetime, turn: Turn | None = None) -> list[tuple[str, str]]:
    """Send every digest whose period has ended (the last one, and the one before it) and
    that no worker has sent; returns
    (sink, outcome) for each one this call decided: ``sent``, ``empty``, ``retry``,
    ``paced`` (the sink's turn is taken: next tick), ``rejected``. Safe to run from every
    worker at once, as often as wanted."""
    decided = []
    for sink in sinks:
        last = last_finished(sink.policy, now)
        # The period before too: its digest may still be owed (the receiver was down then).
        for period in (Period(_previous_boundary(sink.policy, last.start), last.start), last):
            message_id = f"digest:{period.key}"
            if ledger.is_delivered(sink.name, message_id):
                continue
            if not ledger.claim(sink.name, message_id, lease_s=SEND_LEASE_S):
                continue
            try:
                if ledger.is_delivered(sink.name, message_id):
                    continue
                decided.append((sink.name, _send_one(sink, period, store=store, ledger=ledger,
                                                     turn=turn)))
            finally:
                ledger.release(sink.name, message_id)
    return decided


def _send_one(sink: DigestSink, period: Period, *, store: DigestStore,
              ledger: DeliveryLedger, turn: Turn | None) -> str:
    digest = store.read(sink.name, sink.policy, period)
    fields = {"sink": sink.name, "period_start": period.start.isoformat(),
              "period_end": period.end.isoformat()}
    if digest.is_empty:
        ledger.mark_delivered(sink.name, digest.message_id)
        log.info("digest_empty", **fields)
        return "empty"
    if turn is not None and sink.pace_s and turn(sink.name, sink.pace_s) > 0:
        return "paced"
    try:
        sink.send(digest)
    except DeliveryRetryable as error:
        log.warning("digest_delivery_retry", error=str(error), status=error.status, **fields)
        return "retry"
    except DeliveryRejected as error:
        # Settled: retrying a refused digest every tick would only repeat the refusal.
        ledger.mark_delivered(sink.name, digest.message_id)
        log.error("digest_delivery_rejected", reason=error.reason, error=str(error), **fields)
        return "rejected"
    ledger.mark_delivered(sink.name, digest.message_id)
    log.info("digest_delivered", alerts=digest.alerts, calls_analysed=digest.calls_analysed,
             incidents=len(digest.incidents), **fields)
    return "sent"


class DigestingSink:
    """A sink with ``digest:``: alerts and incident events are counted for the period's
    digest instead of being posted (the ledger still records each as taken)."""

    pace_s: float | None = None

    def __init__(self, inner: Any, policy: DigestPolicy, store: DigestStore,
                 clock: Callable[[], datetime]) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.kind: str = inner.kind
        self.policy = policy
        self._store = store
        self._clock = clock

    def __repr__(self) -> str:
        return f"DigestingSink({self.inner!r}, {self.policy.describe()})"

    def send(self, alert: Alert) -> None:
        self._store.record_alert(self.name, current_period(self.policy, self._clock()), alert)

    def send_incident(self, event: Any) -> None:
        data = event.data
        line = (f"{event.incident_id}: {data.get('status')}, {data.get('calls')} calls, "
                f"{_group_words(data.get('group') or {})} (route {data.get('route')})")
        self._store.record_incident(self.name, current_period(self.policy, self._clock()),
                                    event.incident_id, line)


def _group_words(group: Mapping[str, str]) -> str:
    from service.delivery.incidents.grouping import describe_group
    return describe_group(dict(group))


def digest_sinks(sinks: Any) -> list[DigestSink]:
    """The configured sinks with a ``digest:`` option (``service.delivery.sinks.Sinks``), each
    with its policy, its pace and its own ``send_digest``."""
    found = []
    for name in sinks.names:
        raw = sinks.spec(name).options.get("digest")
        if not raw:
            continue
        policy = raw if isinstance(raw, DigestPolicy) else parse_digest(raw, f"sinks.{name}.digest")
        sink = sinks.get(name)
        inner = getattr(sink, "inner", sink)
        send = getattr(inner, "send_digest", None)
        if send is not None:
            found.append(DigestSink(name, policy, send, getattr(inner, "pace_s", None)))
    return found
