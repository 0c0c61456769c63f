"""A digest's counters in Redis, per sink and period, and the ``Digest`` read back from them.

Per sink and period: one hash of counters (alerts; by issue, agent and country), a set
of the alert ids already counted (so a retried delivery counts once; kept apart so
reading the counters does not pull every id), the worst calls (a sorted set cut to
``WORST_KEPT``) and one line per incident; all expire a week after the period ends.
Calls analysed are counted for the whole deployment in 15-minute buckets
(``keys.DIGEST_ANALYSED``) on the incidents' own round trip, and summed per period; they
are shown, but a digest goes only to a sink that an alert or an incident reached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from service import keys
from service.analysis.alert import Alert
from service.analysis.headline import first_issue, identity
from service.delivery.digests.periods import DigestPolicy, Period
from service.redis_scripts import script

#: Calls-analysed buckets (s) and how long they are kept.
ANALYSED_BUCKET_S = 900
ANALYSED_KEEP_S = 8 * 86400
#: A period's counters outlive its end by this much (a late digest can still read them).
COUNTERS_KEEP_S = 7 * 86400
#: Worst calls kept per period, and values shown per breakdown.
WORST_KEPT = 5
TOP = 10

# KEYS: counters, worst, seen ids. The ``seen:`` hash field is how ids were kept before
# they had their own set: still honoured for a period counted across that change.
_RECORD_ALERT = """
if redis.call('HEXISTS', KEYS[1], 'seen:' .. ARGV[1]) == 1 then return 0 end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[3], ARGV[7])
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
        """Nothing happened for this sink: no alert and no incident reached it (calls
        analysed elsewhere in the deployment do not count)."""
        return not (self.alerts or self.incidents)

    @property
    def message_id(self) -> str:
        """The period's id in the delivery ledger (one digest per sink and period)."""
        return digest_message_id(self.period)


def digest_message_id(period: Period) -> str:
    """A period's digest in the delivery ledger: ``digest:<period key>``."""
    return f"digest:{period.key}"


def _score(alert: Alert) -> float:
    """Errors weigh most, then warnings, then issue counts: a higher score is a worse call."""
    errors = sum(1 for issue in alert.issues if issue.severity == "error")
    return errors * 1_000_000 + (len(alert.issues) - errors) * 1_000 + sum(
        min(issue.count, 999) for issue in alert.issues)


class DigestStore:
    """Per-sink, per-period counters in Redis (and the deployment's calls analysed)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record = script(redis, _RECORD_ALERT)

    @staticmethod
    def count_analysed(pipe: Any, now: float) -> None:
        """Queue, on ``pipe``, one analysed call in the 15-minute buckets."""
        bucket = int(now // ANALYSED_BUCKET_S)
        pipe.hincrby(keys.DIGEST_ANALYSED, str(bucket), 1)
        pipe.hdel(keys.DIGEST_ANALYSED, str(bucket - ANALYSED_KEEP_S // ANALYSED_BUCKET_S))
        pipe.expire(keys.DIGEST_ANALYSED, ANALYSED_KEEP_S)

    def record_alert(self, sink: str, period: Period, alert: Alert) -> bool:
        """Count ``alert`` in the sink's period; False when it was already counted."""
        issue = first_issue(alert.issues)
        country = alert.client.country_code if alert.client else None
        worst = json.dumps({"call_sid": alert.call.call_sid, "summary": alert.summary,
                            "severity": alert.severity}, separators=(",", ":"), sort_keys=True)
        ttl = self._ttl(period)
        counts, worst_key = keys.digest(sink, period.key), keys.digest(sink, period.key) + ":worst"
        return bool(self._record(keys=[counts, worst_key, counts + ":seen"], args=[
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
