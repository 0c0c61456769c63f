"""Free RQ's scheduler lock when the scheduler holding it has died.

What this changes in RQ, and why: one scheduler per queue holds
``rq:scheduler-lock:<queue>`` with a 61 s TTL, and other workers only try to take it
during maintenance; no RQ setting shortens the TTL (``maintenance_interval`` only sets
how often they try). When the holder dies (SIGKILL, a lost node, a dyno restart)
re-checks and retries would stall for up to a minute and a half. A live scheduler
refreshes its lock's TTL every second, so a lock whose TTL has run down by
``STALE_AFTER_S`` belongs to a dead process: releasing it (compare-and-delete, so a live
owner is never robbed) lets the next maintenance pass take over at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from redis import Redis
from rq.scheduler import RQScheduler
from rq.scripts import release_lock

#: The TTL RQ gives the lock (its scheduler interval, 1 s, plus 60 s), renewed each second;
#: pinned by ``tests/integration/test_worker_rq_pins.py``.
LOCK_TTL_S = 61
#: This long without a renewal means the scheduler is gone.
STALE_AFTER_S = 5

log = structlog.get_logger(__name__)


def release_stale_scheduler_locks(redis: Redis, queue_names: Iterable[str]) -> list[str]:
    """Release each queue's scheduler lock whose owner stopped refreshing it; return those queues."""
    released = []
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        owner, ttl = redis.get(key), redis.ttl(key)
        if owner is None or not 0 <= ttl < LOCK_TTL_S - STALE_AFTER_S:
            continue
        owner_name = owner.decode() if isinstance(owner, bytes) else owner
        if release_lock(redis, key, owner_name):
            log.warning("scheduler_lock_released", queue=name, owner=owner_name,
                        silent_s=LOCK_TTL_S - ttl)
            released.append(name)
    return released
