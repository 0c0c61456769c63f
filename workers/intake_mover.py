"""Moves due calls from the intake (``service.intake``) into RQ's analysis queue.

Every worker process runs one ``IntakeMover`` thread; each pass claims the due calls
(``Intake.due``: the other movers do not see them for a while), enqueues them as
``analyze-CA…`` jobs (``unique``, so a pass repeated after a crash still makes one job)
and only then takes them off the intake.

The processes of one container take turns (:class:`Turn`): with ``--concurrency N``,
process ``i`` passes in the wall-clock seconds ``s`` where ``s % N == i`` (each container
at a phase of its own within the second, so that two containers do not pass at the same
instant), so a container looks at the intake once a second whatever its N. Each process looking every second
cost every idle worker process a round trip a second for work one pass does (a quarter
of the idle workers' CPU in ``bench/e2e.py`` with the default 4). A turn that falls to a
process being restarted is skipped: the calls wait a second more, or another container's
pass takes them.

The same turn carries the container's other once-a-second look (``also``): the watch for
killed workers (``workers.rq_adaptations.death_watch``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis as redis_lib
import structlog

from service.intake import Intake
from workers.queues import schedule_analysis

log = structlog.get_logger(__name__)

#: How often a container looks for due calls (the delay's resolution).
MOVE_EVERY_S = 1.0
#: Calls claimed per look at the intake (another look follows a full batch at once).
DUE_BATCH = 100
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
        batch = intake.due(time.time() if now is None else now, limit=DUE_BATCH)
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
        if len(batch) < DUE_BATCH:  # all that was due: no round trip to find nothing more
            return moved


@dataclass(frozen=True)
class Turn:
    """Process ``index`` of the ``of`` worker processes in a container: its seconds to move,
    each starting ``phase`` seconds (0 to ``MOVE_EVERY_S``) past the wall-clock second."""

    index: int = 0
    of: int = 1
    phase: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.of:
            raise ValueError(f"process {self.index} of {self.of}")
        if not 0 <= self.phase < MOVE_EVERY_S:
            raise ValueError(f"phase {self.phase} s")

    def wait_s(self, now: float) -> float:
        """Seconds from ``now`` (wall clock) to the start of this process's next turn."""
        tick = math.floor((now - self.phase) / MOVE_EVERY_S) + 1
        tick += (self.index - tick) % self.of
        return tick * MOVE_EVERY_S + self.phase - now


def container_phase() -> float:
    """A phase for this container's turns, at random: containers' passes spread out."""
    return random.uniform(0.0, MOVE_EVERY_S) % MOVE_EVERY_S  # noqa: S311  # not a secret


#: A process alone in its container: it moves due calls every second.
ALONE = Turn()


class IntakeMover:
    """A daemon thread that moves due calls on its process's turns until ``stop()``, and
    then runs each of ``also``."""

    def __init__(self, redis: redis_lib.Redis, *, turn: Turn = ALONE,
                 move: Callable[[redis_lib.Redis], int] = move_due_calls,
                 also: Sequence[Callable[[], object]] = ()) -> None:
        self._redis = redis
        self._turn = turn
        self._move = move
        self._also = tuple(also)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-intake", daemon=True)

    def start(self) -> IntakeMover:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._turn.wait_s(time.time())):
            if self._attempt(lambda: self._move(self._redis), "intake_unavailable"):
                for task in self._also:
                    self._attempt(task, "turn_task_failed", what=getattr(task, "__qualname__", ""))

    @staticmethod
    def _attempt(task: Callable[[], object], event: str, **fields: str) -> bool:
        """Run ``task``; a failure is logged as ``event`` and never ends the turns."""
        try:
            task()
        except redis_lib.RedisError as error:
            log.warning(event, error=type(error).__name__, **fields)
            return False
        except Exception:  # a bug in one task must not stop the intake for good
            log.exception(event, **fields)
            return False
        return True
