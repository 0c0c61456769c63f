"""Moves due calls from the intake (``service.intake``) into RQ's analysis queue.

Every worker process runs one ``IntakeMover`` thread; each pass claims the due calls
(``Intake.due``: the other movers do not see them for a while), enqueues them as
``analyze-CA…`` jobs (``unique``, so a pass repeated after a crash still makes one job)
and only then takes them off the intake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis as redis_lib
import structlog

from service.intake import Intake
from workers.queues import schedule_analysis

log = structlog.get_logger(__name__)

#: How often a worker looks for due calls (the delay's resolution).
MOVE_EVERY_S = 1.0
#: Calls taken off the intake per round trip. A mover that dies mid-batch leaves at most
#: this many calls that are in RQ due again ``CLAIM_S`` later: their analysis may run a
#: second time (a finished job is not kept, so ``unique`` does not stop it; the delivery
#: ledger and the incidents' per-alert marks keep it from alerting twice).
DONE_EVERY = 10


def move_due_calls(redis: redis_lib.Redis, *, now: float | None = None) -> int:
    """Enqueue every call whose analysis is due; return how many were enqueued by this pass."""
    intake = Intake(redis)
    moved = 0
    while True:
        batch = intake.due(time.time() if now is None else now)
        if not batch:
            return moved
        handed: list[str] = []
        try:
            for call_sid, call_json in batch:
                if call_json is None:
                    # Its record outlived CALL_TTL_S: no worker ran for a day.
                    log.error("intake_call_expired", call_sid=call_sid)
                elif schedule_analysis(redis, call_json, delay_s=0):
                    moved += 1
                    log.info("analysis_enqueued", call_sid=call_sid)
                handed.append(call_sid)
                if len(handed) == DONE_EVERY:
                    intake.done(*handed)
                    handed.clear()
        finally:  # what is in RQ leaves the intake even if Redis failed the rest of the batch
            intake.done(*handed)


class IntakeMover:
    """A daemon thread that moves due calls every ``MOVE_EVERY_S`` until ``stop()``."""

    def __init__(self, redis: redis_lib.Redis, *,
                 move: Callable[[redis_lib.Redis], int] = move_due_calls) -> None:
        self._redis = redis
        self._move = move
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-intake", daemon=True)

    def start(self) -> IntakeMover:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(MOVE_EVERY_S):
            try:
                self._move(self._redis)
            except redis_lib.RedisError as error:
                log.warning("intake_unavailable", error=type(error).__name__)
