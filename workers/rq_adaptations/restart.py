"""The worker process's outer loop: run an RQ worker; when Redis fails it, wait and start another.

What this changes in RQ, and why: RQ's worker ends when Redis fails under it, and a
process that exits is restarted by the platform only after a cool-off (up to 20
minutes on Heroku after repeated crashes), so the process outlives Redis failures
itself. The wait is bounded and backed off: ``BACKOFF_S`` (1, 2, 4 ... 30 s) between
attempts, with one log line per step naming the Redis host and port it waits for
(``worker_waiting_for_redis``; never the URL, which may hold a password). The back-off
counts every failed start, also when Redis answers PING but refuses writes (a full
Redis: ``OOM command not allowed``), so such a Redis costs one attempt per step, not
a hot loop; it starts again from 1 s once a worker has stayed up ``HEALTHY_AFTER_S``.
A stop signal ends the wait at once, exit code 0. The job the worker held when Redis
failed it is put back once Redis answers (``workers.rq_adaptations.job_in_hand``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Protocol

import redis as redis_lib
import structlog

from workers.intake_mover import move_due_calls
from workers.rq_adaptations.job_in_hand import requeue_job_in_hand
from workers.rq_adaptations.redis_loss import RedisLost
from workers.rq_adaptations.shutdown import StopSignal

#: Waits between attempts to reach Redis; the last one repeats.
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
#: A worker up this long has recovered: the next failure waits from the first step again.
HEALTHY_AFTER_S = 60.0
#: How often a wait looks at the stop flag.
STOP_CHECK_S = 0.25

log = structlog.get_logger(__name__)


class RunsRQ(Protocol):
    """What the loop needs of a worker (``workers.worker.build_worker`` builds one)."""

    name: str
    job_in_hand: tuple[str, str] | None

    def work(self, burst: bool = ..., logging_level: str | None = ...,
             *, with_scheduler: bool = ...) -> bool: ...

    def abandon(self) -> None: ...


class Backoff:
    """The next wait: ``BACKOFF_S`` one step further on each call, until ``reset``."""

    def __init__(self, steps: tuple[float, ...] = BACKOFF_S) -> None:
        self._steps = steps
        self._failures = 0

    def next_wait(self) -> float:
        wait = self._steps[min(self._failures, len(self._steps) - 1)]
        self._failures += 1
        return wait

    def reset(self) -> None:
        self._failures = 0


def redis_address(redis: redis_lib.Redis) -> str:
    """``host:port`` (or the socket path) of a client, without credentials."""
    options = redis.connection_pool.connection_kwargs
    if options.get("path"):
        return str(options["path"])
    return f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"


def run(redis: redis_lib.Redis, build: Callable[[str | None, StopSignal], RunsRQ], *,
        burst: bool = False, name: str | None = None, rq_logging_level: str = "WARNING",
        stop: StopSignal | None = None, sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic) -> int:
    """Work until asked to stop; return the exit code (0)."""
    stop = stop or StopSignal()
    backoff = Backoff()
    restarts = 0
    in_hand: tuple[str, str] | None = None
    while True:
        stop.install()  # ours until RQ's loop installs its handlers, and again once it is left
        # A restarted worker needs a new name: the dead one's may still be registered.
        worker_name = f"{name}-{restarts}" if name and restarts else name
        worker: RunsRQ | None = None
        error: BaseException | None = None
        started = clock()
        try:
            worker = build(worker_name, stop)  # asks Redis
            worker_name = worker.name
            log.info("worker_starting", worker=worker.name)
            if burst:
                move_due_calls(redis)  # no mover thread lives long enough in a burst
            worker.work(with_scheduler=True, burst=burst, logging_level=rq_logging_level)
            if burst or stop.requested:
                return 0
            log.warning("worker_stopped_unexpectedly", worker=worker.name)
        except RedisLost as lost:
            error = lost.error
        except redis_lib.RedisError as raised:  # RQ's teardown, or building the worker
            error = raised
        if worker is not None:  # RQ's loop may also end "normally" after a Redis error
            worker.abandon()
            in_hand = in_hand or worker.job_in_hand
        stop.install()
        if clock() - started >= HEALTHY_AFTER_S:
            backoff.reset()
        if not wait_for_redis(redis, backoff, error, stopping=lambda: stop.requested, sleep=sleep):
            log.info("worker_stopped_waiting_for_redis", worker=worker_name)
            if in_hand is not None:  # nothing can put it back now: say which it was
                log.error("job_in_hand_not_requeued", queue=in_hand[0], job_id=in_hand[1])
            return 0
        if in_hand is not None:
            with contextlib.suppress(redis_lib.RedisError):  # gone again: after the next wait
                requeue_job_in_hand(redis, *in_hand)
                in_hand = None
        restarts += 1


def wait_for_redis(redis: redis_lib.Redis, backoff: Backoff, error: BaseException | None, *,
                   stopping: Callable[[], bool] = lambda: False,
                   sleep: Callable[[float], None] = time.sleep) -> bool:
    """Wait the next back-off step (one log line), then PING; again until Redis answers
    (True) or ``stopping()`` says so (False, looked at every ``STOP_CHECK_S``)."""
    address = redis_address(redis)
    while not stopping():
        wait = backoff.next_wait()
        log.warning("worker_waiting_for_redis", redis=address, retry_in_s=wait,
                    error=type(error).__name__ if error else None,
                    reason=_reason(error) if error else None)
        waited = 0.0
        while waited < wait and not stopping():
            sleep(STOP_CHECK_S)
            waited += STOP_CHECK_S
        if stopping():
            return False
        try:
            redis.ping()
            return True
        except redis_lib.RedisError as failed:
            error = failed
    return False


def _reason(error: BaseException) -> str:
    """The end of an error's message, where Redis puts its reason (a failed pipeline's
    message starts with the command)."""
    text = str(error)
    return text if len(text) <= 120 else "…" + text[-119:]
