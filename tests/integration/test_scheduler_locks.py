"""Taking over RQ's scheduler lock from a scheduler that died."""

from __future__ import annotations

import multiprocessing
import signal
import time
from typing import Any

import redis as redis_lib
from rq.scheduler import RQScheduler
from rq.worker import WorkerStatus

from workers.queues import ANALYSIS_QUEUE, DELIVERY_QUEUE
from workers.rq_adaptations.liveness import Heartbeat, alive_key
from workers.rq_adaptations.scheduler_locks import (
    LOCK_TTL_S,
    STALE_AFTER_S,
    release_stale_scheduler_locks,
)
from workers.worker import build_worker


def hold_lock(redis: redis_lib.Redis, queue: str, owner: str, silent_s: float) -> None:
    """A lock as RQ leaves it ``silent_s`` seconds after its owner last renewed it."""
    redis.set(RQScheduler.get_locking_key(queue), owner, px=int((LOCK_TTL_S - silent_s) * 1000))


def test_lock_of_a_silent_scheduler_is_released(redis: redis_lib.Redis) -> None:
    """A lock not renewed for longer than STALE_AFTER_S is freed at once."""
    hold_lock(redis, ANALYSIS_QUEUE, "dead", silent_s=STALE_AFTER_S + 5)
    hold_lock(redis, DELIVERY_QUEUE, "alive", silent_s=1)
    assert release_stale_scheduler_locks(redis, [ANALYSIS_QUEUE, DELIVERY_QUEUE]) == [ANALYSIS_QUEUE]
    assert redis.get(RQScheduler.get_locking_key(ANALYSIS_QUEUE)) is None


def test_lock_of_a_live_scheduler_is_kept(redis: redis_lib.Redis) -> None:
    """A lock renewed a second ago (or just taken by a starting worker) stays with its owner."""
    hold_lock(redis, ANALYSIS_QUEUE, "alive", silent_s=1)
    hold_lock(redis, DELIVERY_QUEUE, "starting", silent_s=0)
    assert release_stale_scheduler_locks(redis, [ANALYSIS_QUEUE, DELIVERY_QUEUE]) == []
    assert redis.get(RQScheduler.get_locking_key(ANALYSIS_QUEUE)) == b"alive"


def _scheduler_that_only_records_sigterm(ready: Any) -> None:
    """A scheduler process forked a moment before its worker stopped: it still has the
    worker's SIGTERM handler, which only records the stop."""
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    ready.set()
    time.sleep(60)


def test_a_worker_stops_even_when_its_scheduler_ignores_sigterm(redis: redis_lib.Redis) -> None:
    """RQ's teardown joins its scheduler process with no deadline; callwatch's waits
    ``SCHEDULER_STOP_S`` and then kills it, so the worker's stop completes."""
    worker = build_worker(redis)
    worker.scheduler = RQScheduler([ANALYSIS_QUEUE], connection=redis)
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(target=_scheduler_that_only_records_sigterm, args=(ready,))
    worker.scheduler._process = process
    process.start()
    try:
        assert ready.wait(10)
        worker.stop_scheduler()
        assert not process.is_alive()
        assert process.exitcode == -signal.SIGKILL
    finally:
        if process.is_alive():
            process.kill()
            process.join()


class _RecordingScheduler:
    """Stands for the worker's ``RQScheduler``: records the take-over instead of forking."""

    def __init__(self) -> None:
        self.acquired: list[bool] = []
        self._process: Any = None  # RQ's: the forked scheduler process, once started

    def acquire_locks(self, auto_start: bool = False) -> None:
        self.acquired.append(auto_start)


def test_a_waiting_workers_beat_frees_a_dead_schedulers_lock_for_it_to_take(
        redis: redis_lib.Redis) -> None:
    """The beat reads the scheduler locks in its own round trip while the worker waits for
    jobs; a stale one is released there and taken (scheduler started) at the worker's next
    look for jobs. A worker running a job leaves the lock alone."""
    worker = build_worker(redis)
    scheduler = _RecordingScheduler()
    worker.scheduler = scheduler  # type: ignore[assignment]
    beat = Heartbeat(redis, worker.name, locks=worker)
    hold_lock(redis, ANALYSIS_QUEUE, "dead", silent_s=STALE_AFTER_S + 5)

    worker.set_state(WorkerStatus.BUSY)  # running a job
    beat._beat()
    worker.watch_scheduler_locks()
    assert redis.get(RQScheduler.get_locking_key(ANALYSIS_QUEUE)) == b"dead"
    assert scheduler.acquired == []

    worker.set_state(WorkerStatus.IDLE)  # waiting for one
    beat._beat()
    assert redis.get(RQScheduler.get_locking_key(ANALYSIS_QUEUE)) is None
    assert redis.exists(alive_key(worker.name))
    worker.watch_scheduler_locks()
    worker.watch_scheduler_locks()
    assert scheduler.acquired == [True]


def test_a_worker_whose_scheduler_runs_leaves_other_locks_to_others(
        redis: redis_lib.Redis) -> None:
    """A process whose scheduler child is alive does not free and take another queue's
    lock (its scheduler would not renew a lock its parent took); once the child is gone,
    it does."""
    worker = build_worker(redis)
    scheduler = _RecordingScheduler()
    worker.scheduler = scheduler  # type: ignore[assignment]
    context = multiprocessing.get_context("fork")
    scheduler._process = context.Process(target=time.sleep, args=(30,))
    scheduler._process.start()
    try:
        worker.set_state(WorkerStatus.IDLE)
        worker.watch_scheduler_locks()  # the main thread looks at its child
        assert worker.locks_to_watch() == []
    finally:
        scheduler._process.kill()
        scheduler._process.join()
    worker.watch_scheduler_locks()
    assert worker.locks_to_watch() == worker.queue_names()
