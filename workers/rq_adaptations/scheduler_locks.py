"""Free RQ's scheduler lock when the scheduler holding it has died.

What this changes in RQ, and why: one scheduler per queue holds
``rq:scheduler-lock:<queue>`` with a 61 s TTL, and other workers only try to take it
during maintenance; no RQ setting shortens the TTL (``maintenance_interval`` only sets
how often they try). When the holder dies (SIGKILL, a lost node, a dyno restart)
re-checks and retries would stall for up to a minute and a half. A live scheduler
refreshes its lock's TTL every second, so a lock whose TTL has run down by
``STALE_AFTER_S`` belongs to a dead process: releasing it (compare-and-delete, so a live
owner is never robbed) lets a worker take over at once. Every worker looks every
``WATCH_EVERY_S`` while it waits for jobs (one round trip), not only at maintenance, and
takes the lock over itself (``WatchesSchedulerLocks.watch_scheduler_locks``): paced Slack
sends and retries wait in RQ's scheduled registry, so each second without a scheduler made them that late
(the storm drill: 5-6 s after a kill; now about 3).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog
from redis import Redis
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.worker import BaseWorker

#: The TTL RQ gives the lock (its scheduler interval, 1 s, plus 60 s), renewed each second;
#: pinned by ``tests/integration/test_worker_rq_pins.py``.
LOCK_TTL_S = 61
#: This long without a renewal means the scheduler is gone.
STALE_AFTER_S = 2.5
#: How often a waiting worker looks at the scheduler locks.
WATCH_EVERY_S = 1.0

log = structlog.get_logger(__name__)


def release_stale_scheduler_locks(redis: Redis, queue_names: Iterable[str]) -> list[str]:
    """Release each queue's scheduler lock whose owner stopped refreshing it; return those queues."""
    return [name for name, released in _free_locks(redis, queue_names) if released]


def _free_locks(redis: Redis, queue_names: Iterable[str]) -> list[tuple[str, bool]]:
    """(queue, released here) for each lock that is free after this call (one round trip when
    none is stale)."""
    free = []
    names = list(queue_names)
    pipe = redis.pipeline(transaction=False)
    for name in names:
        key = RQScheduler.get_locking_key(name)
        pipe.get(key)
        pipe.pttl(key)
    answers = pipe.execute()
    for index, name in enumerate(names):
        owner, ttl_ms = answers[2 * index], answers[2 * index + 1]
        if owner is None:
            free.append((name, False))
            continue
        if not 0 <= ttl_ms < (LOCK_TTL_S - STALE_AFTER_S) * 1000:
            continue
        owner_name = owner.decode() if isinstance(owner, bytes) else owner
        if release_lock(redis, RQScheduler.get_locking_key(name), owner_name):
            log.warning("scheduler_lock_released", queue=name, owner=owner_name,
                        silent_s=round(LOCK_TTL_S - ttl_ms / 1000, 1))
            free.append((name, True))
    return free


class WatchesSchedulerLocks(BaseWorker):
    """Takes RQ's scheduler over from a dead one within about ``STALE_AFTER_S`` +
    ``WATCH_EVERY_S``, instead of at the next maintenance pass."""

    _locks_watched_at = float("-inf")

    def watch_scheduler_locks(self) -> None:
        """Called by the waiting loop: free stale locks, then take them for this worker."""
        moment = time.monotonic()
        if moment - self._locks_watched_at < WATCH_EVERY_S:
            return
        self._locks_watched_at = moment
        if release_stale_scheduler_locks(self.connection, self.queue_names()) and self.scheduler:
            self.scheduler.acquire_locks(auto_start=True)
