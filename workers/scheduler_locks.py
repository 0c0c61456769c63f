"""Free RQ's scheduler lock when the scheduler holding it has died.

One scheduler per queue holds ``rq:scheduler-lock:<queue>`` with a 61 s TTL, and
other workers only try to take it during maintenance. When the holder dies (SIGKILL,
a lost node, a dyno restart) delayed analyses and retries would stall for up to a
minute and a half. Every scheduler writes ``last_heartbeat`` into its own hash each
second, so a lock whose owner has not beaten for ``STALE_AFTER_S`` belongs to a
dead process: releasing it (compare-and-delete, so a live owner is never robbed)
lets the next maintenance pass take over at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import structlog
from redis import Redis
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock
from rq.utils import now, utcparse

#: A scheduler beats every second; this long without a beat means it is gone.
STALE_AFTER_S = 15

log = structlog.get_logger()


def release_stale_scheduler_locks(redis: Redis, queue_names: Iterable[str], *,
                                  at: datetime | None = None) -> list[str]:
    """Release each queue's scheduler lock whose owner stopped beating; return those queues."""
    moment = at or now()
    released = []
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        owner = redis.get(key)
        if owner is None:
            continue
        owner_name = _text(owner)
        beat = redis.hget(SCHEDULER_KEY_TEMPLATE % owner_name, "last_heartbeat")
        silent_s = (moment - utcparse(_text(beat))).total_seconds() if beat else None
        if (silent_s is None or silent_s > STALE_AFTER_S) and release_lock(redis, key, owner_name):
            log.warning("scheduler_lock_released", queue=name, owner=owner_name,
                        silent_s=None if silent_s is None else round(silent_s))
            released.append(name)
    return released


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
