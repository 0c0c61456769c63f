"""Free RQ's scheduler lock when the scheduler holding it has died.

What this changes in RQ, and why: one scheduler per queue holds
``rq:scheduler-lock:<queue>`` with a 61 s TTL, and other workers only try to take it
during maintenance; no RQ setting shortens the TTL (``maintenance_interval`` only sets
how often they try). When the holder dies (SIGKILL, a lost node, a dyno restart)
re-checks and retries would stall for up to a minute and a half. A live scheduler
refreshes its lock's TTL every second, so a lock whose TTL has run down by
``STALE_AFTER_S`` belongs to a dead process: releasing it (compare-and-delete, so a live
owner is never robbed) lets a worker take over at once.

Every waiting worker looks at the locks as it beats (``workers.rq_adaptations.liveness``,
every ``BEAT_EVERY_S``, in the beat's own round trip), not only at maintenance, and the
worker that released a lock takes it over itself at once: the beat ends its pop
(``workers.rq_adaptations.pop_wake``) and its main thread, which forks the scheduler,
takes the lock (``WatchesSchedulerLocks.watch_scheduler_locks``). Paced Slack sends and
retries wait in RQ's scheduled registry, so each second without a scheduler made them that
late (the storm drill: 5-6 s after a kill; now about 3).
A worker running a job does not look: the lock would wait for the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from redis import Redis
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.worker import WorkerStatus

from workers.rq_adaptations.dequeue import PromptDequeue

#: The TTL RQ gives the lock (its scheduler interval, 1 s, plus 60 s), renewed each second;
#: pinned by ``tests/integration/test_worker_rq_pins.py``.
LOCK_TTL_S = 61
#: This long without a renewal means the scheduler is gone.
STALE_AFTER_S = 2.5

log = structlog.get_logger(__name__)


def read_locks(pipe: Any, queue_names: Sequence[str]) -> None:
    """Queue the reads ``release_stale`` needs (two answers a queue) on ``pipe``."""
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        pipe.get(key)
        pipe.pttl(key)


def release_stale(redis: Redis, queue_names: Sequence[str], answers: Sequence[Any]) -> list[str]:
    """Given ``read_locks``' answers, release each lock whose owner stopped refreshing it;
    return those queues."""
    released = []
    for index, name in enumerate(queue_names):
        owner, ttl_ms = answers[2 * index], answers[2 * index + 1]
        if owner is None or not 0 <= ttl_ms < (LOCK_TTL_S - STALE_AFTER_S) * 1000:
            continue
        owner_name = owner.decode() if isinstance(owner, bytes) else owner
        if release_lock(redis, RQScheduler.get_locking_key(name), owner_name):
            log.warning("scheduler_lock_released", queue=name, owner=owner_name,
                        silent_s=round(LOCK_TTL_S - ttl_ms / 1000, 1))
            released.append(name)
    return released


def release_stale_scheduler_locks(redis: Redis, queue_names: Sequence[str]) -> list[str]:
    """Release each queue's scheduler lock whose owner stopped refreshing it (one round
    trip when none is stale); return those queues."""
    pipe = redis.pipeline(transaction=False)
    read_locks(pipe, queue_names)
    return release_stale(redis, queue_names, pipe.execute())


class WatchesSchedulerLocks(PromptDequeue):
    """Takes RQ's scheduler over from a dead one within about ``STALE_AFTER_S`` plus a
    beat, instead of at the next maintenance pass."""

    #: Set by the beat thread when it released a stale lock for this worker to take.
    _locks_released = False
    #: Whether this process's scheduler child was alive at the main thread's last look
    #: (the beat thread must not look itself: ``is_alive()`` reaps the child).
    _scheduler_running = False

    def locks_to_watch(self) -> list[str]:
        """The beat's question: the queues whose scheduler locks to look at; none while
        the worker runs a job, has no scheduler to start, or already runs one (a lock taken
        by a process whose scheduler runs would not be renewed: RQ's scheduler renews the
        locks it took itself)."""
        waiting = self.get_state() == WorkerStatus.IDLE  # busy from a job's start to the next pop
        if not waiting or self.scheduler is None or self._scheduler_running:
            return []
        return self.queue_names()

    def stale_locks_released(self, queue_names: list[str]) -> None:
        """The beat released these queues' locks: take them now (the pop is ended)."""
        self._locks_released = True
        self.wake_pop()

    def wants_loop(self) -> bool:
        return self._locks_released or super().wants_loop()

    def watch_scheduler_locks(self) -> None:
        """Called by the waiting loop, before each pop and as a pop returns a job: take the
        locks the beat released (no round trip otherwise)."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        process = scheduler._process
        self._scheduler_running = process is not None and process.is_alive()
        if self._locks_released and not self.stop_requested:
            self._locks_released = False
            scheduler.acquire_locks(auto_start=True)
