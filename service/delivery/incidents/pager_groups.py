"""PagerDuty pages that group and resolve: one ``grp_…`` key per problem, resolved when quiet.

A per-call alert to a ``pagerduty`` sink is triggered with ``dedup_key`` = ``grp_…``, a
hash of the route and the alert's storm group values (the route's ``group_by``:
``service.delivery.incidents.grouping``), so repeats of one problem add to one
PagerDuty incident instead of paging again. Each open group is a member of one Redis
sorted set (``keys.PAGER_GROUPS``), scored with the time its quiet period ends: every
new alert of the group pushes that time to ``now + resolve_after_s`` (``touch``).

``resolve_quiet`` runs on the workers' clock tick: it claims the groups whose quiet time
has passed (one worker at a time: a claim is a lease, ``CLAIM_LEASE_S``), sends each a
``resolve`` and then forgets the group, unless a new alert came in meanwhile (then the
group stays open and resolves after its new quiet time). A resolve that fails is tried
again when the lease ends; a worker that dies after sending only repeats a ``resolve``,
which PagerDuty ignores for an already resolved key. The next alert after a resolve
triggers the same key again, which opens a fresh PagerDuty incident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from redis import Redis

from service import keys
from service.delivery import UNKNOWN_SINK_WAIT_S
from service.delivery.incidents.grouping import group_hash
from service.errors import DeliveryRejected, DeliveryRetryable
from service.redis_scripts import script

log = structlog.get_logger(__name__)

#: Seconds a claimed group is left to the worker resolving it before another may try.
CLAIM_LEASE_S = 60.0
#: Groups resolved in one tick at most (the rest wait for the next tick).
MAX_PER_TICK = 200
#: The field a per-call delivery to a pager sink carries its group in.
MESSAGE_FIELD = "pager_group"

# KEYS[1] the set; ARGV: now, lease end, limit. Claims the due members: their score
# becomes the lease end (a claim); they come back with the score they had (member, due, ...).
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[3]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], due[i])
end
return due
"""
# KEYS[1] the set; ARGV: member, claimed score, due. Give a claim back: the group is due
# again at once (for a worker that knows its sink), unless it was touched since.
_UNCLAIM = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
end
return 0
"""
# KEYS[1] the set; ARGV: member, claimed score. Forget the group unless it was touched since.
_SETTLE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


def pager_dedup_key(route: str, group: Mapping[str, str]) -> str:
    """``grp_`` and 32 hex characters: the same for every alert of one route's group."""
    return "grp_" + group_hash(route, group)[:32]


@dataclass(frozen=True)
class PagerGroup:
    """A per-call alert's pager group, as its delivery to a pager sink carries it."""

    dedup_key: str
    route: str
    resolve_after_s: float

    def to_json(self) -> dict[str, Any]:
        return {"dedup_key": self.dedup_key, "route": self.route,
                "resolve_after_s": self.resolve_after_s}

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> PagerGroup | None:
        """The group a delivery message carries (None: a plain alert, keyed by its id)."""
        data = message.get(MESSAGE_FIELD)
        if not isinstance(data, dict) or not str(data.get("dedup_key", "")).startswith("grp_"):
            return None
        return cls(str(data["dedup_key"]), str(data.get("route", "")),
                   float(data.get("resolve_after_s") or 0))


class Resolver(Protocol):
    """What ``resolve_quiet`` needs of a pager sink: send ``resolve`` for one key."""

    def resolve(self, dedup_key: str) -> None: ...


class PagerGroups:
    """The open pager groups in Redis, each with the time its quiet period ends."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = script(redis, _CLAIM)
        self._settle = script(redis, _SETTLE)
        self._unclaim = script(redis, _UNCLAIM)

    def touch(self, sink: str, group: PagerGroup, now: float) -> None:
        """A new alert of ``group`` for ``sink``: its quiet period starts again at ``now``."""
        # Plain ZADD (not GT): a touch during a claim must change the claimed score, so the
        # claim's settle keeps the group open.
        self._redis.zadd(keys.PAGER_GROUPS, {_member(sink, group.dedup_key): now + group.resolve_after_s})

    def open(self) -> dict[tuple[str, str], float]:
        """Every open group, (sink, dedup key) -> when its quiet period ends (epoch s)."""
        found: list[tuple[bytes, float]] = self._redis.zrange(  # type: ignore[assignment]
            keys.PAGER_GROUPS, 0, -1, withscores=True)
        return {_parse(member): float(score) for member, score in found}

    def claim_due(self, now: float, *, lease_s: float = CLAIM_LEASE_S,
                  limit: int = MAX_PER_TICK) -> list[tuple[str, str, float, float]]:
        """Claim the groups quiet since before ``now``: (sink, dedup key, claimed score,
        when its quiet time ended)."""
        claimed = now + lease_s
        found = self._claim(keys=[keys.PAGER_GROUPS], args=[repr(now), repr(claimed), limit])
        return [(*_parse(found[i]), claimed, float(found[i + 1])) for i in range(0, len(found), 2)]

    def unclaim(self, sink: str, dedup_key: str, claimed: float, due: float) -> bool:
        """Give a claimed group back as it was (due at ``due``), unless touched since."""
        return bool(self._unclaim(keys=[keys.PAGER_GROUPS],
                                  args=[_member(sink, dedup_key), repr(claimed), repr(due)]))

    def settle(self, sink: str, dedup_key: str, claimed: float) -> bool:
        """Forget a resolved group, unless a new alert touched it since the claim."""
        return bool(self._settle(keys=[keys.PAGER_GROUPS],
                                 args=[_member(sink, dedup_key), repr(claimed)]))


def pager_sinks(sinks: Any) -> dict[str, Resolver]:
    """The configured sinks that resolve pager groups (``service.delivery.sinks.Sinks``)."""
    found: dict[str, Resolver] = {}
    for name in sinks.names:
        sink = sinks.get(name)
        if getattr(sink, "kind", None) == "pager" and callable(getattr(sink, "resolve", None)):
            found[name] = sink
    return found


def resolve_quiet(groups: PagerGroups, sinks: Callable[[str], Resolver | None], now: float) -> int:
    """Send ``resolve`` for every group quiet for its ``resolve_after_s``; returns how many
    were resolved. ``sinks`` gives a pager sink by name; None (a sink this worker does not
    know: a rollout, or a worker without the routing file) gives the group back for a
    worker that knows it, and drops it only once its quiet time ended more than
    ``UNKNOWN_SINK_WAIT_S`` ago. Safe from any number of workers at once."""
    resolved = 0
    for sink_name, dedup_key, claimed, due in groups.claim_due(now):
        sink = sinks(sink_name)
        if sink is None:
            if now - due <= UNKNOWN_SINK_WAIT_S:
                groups.unclaim(sink_name, dedup_key, claimed, due)
                continue
            log.warning("pager_group_dropped", sink=sink_name, dedup_key=dedup_key,
                        reason="unknown_sink", waited_s=round(now - due))
            groups.settle(sink_name, dedup_key, claimed)
            continue
        try:
            sink.resolve(dedup_key)
        except DeliveryRetryable as error:  # the lease ends, and the next tick tries again
            log.warning("pager_resolve_retry", sink=sink_name, dedup_key=dedup_key, error=str(error))
            continue
        except DeliveryRejected as error:
            log.error("pager_resolve_rejected", sink=sink_name, dedup_key=dedup_key,
                      reason=error.reason, error=str(error))
        else:
            resolved += 1
            log.info("pager_group_resolved", sink=sink_name, dedup_key=dedup_key)
        groups.settle(sink_name, dedup_key, claimed)
    return resolved


def _member(sink: str, dedup_key: str) -> str:
    return f"{sink} {dedup_key}"


def _parse(member: bytes | str) -> tuple[str, str]:
    text = member.decode() if isinstance(member, bytes) else member
    sink, _, dedup_key = text.partition(" ")
    return sink, dedup_key
