"""Stopping a worker on SIGTERM or SIGINT: promptly, at any moment, with exit code 0.

What this changes in RQ, and why:

* RQ installs its handlers only once ``work()`` has registered the worker; a signal
  before that took the default action (exit -15). A :class:`StopSignal` recorder is
  installed by ``workers.rq_adaptations.restart.run`` before RQ's loop and again once it is left, and
  RQ's handler (``request_stop``, replaced here) records into the same one, so a stop
  seen at any moment is honoured.
* RQ's idle handler raises ``StopRequested`` wherever the signal lands; raised inside a
  ``__del__`` it is swallowed and the worker went on listening. Here a signal only
  sets the flag, which ``workers.rq_adaptations.dequeue`` looks at between pops (a stop
  ends the pop in progress: ``workers.rq_adaptations.pop_wake``) and a busy worker looks
  at after its job.
* RQ's wait while ``rq suspend`` holds looks only at RQ's own flag, which the warm stop
  here did not set: a suspended worker ignored its first SIGTERM until the platform killed
  it. A stop sets that flag too.
* A second signal, a second or more after the first, is a cold stop (the running job
  is abandoned, the forking worker's horse killed), as in RQ.
* RQ's warm stop waits for the running job however long it takes (an analysis may take
  minutes against a slow Insights); platforms kill at 30 s (Heroku) or the grace period.
  For a job running in the worker's own process (the default), the stop shortens RQ's
  job-timeout alarm (``SIGALRM``, which RQ arms only while the job's code runs) to
  ``JOB_GRACE_S``: a job still running then is interrupted (:class:`CutShort`, a
  ``BaseException`` so no ``except Exception`` in job code swallows it) and put back at
  the front of its queue, without spending a retry, for another worker; the worker then
  exits. Every job is safe to run again (unique successors, the delivery ledger).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.worker import BaseWorker

log = structlog.get_logger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: A repeat within this long is the same stop (Ctrl-C reaches a whole process group).
REPEAT_WINDOW_S = 1.0
#: How long a stop lets the running job finish before it is put back (the worker is gone
#: well within 25 s of SIGTERM: this, plus putting the job back and RQ's teardown).
JOB_GRACE_S = 15


class CutShort(BaseException):
    """The running job was interrupted by a stop; it is put back on its queue."""


class StopSignal:
    """Records the first SIGTERM or SIGINT received while installed."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._at = 0.0
        #: Called once with the first stop; each must be safe in a signal handler.
        self.listeners: list[Callable[[], None]] = []

    def install(self) -> StopSignal:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.record)
        return self

    def record(self, signum: int, frame: FrameType | None = None) -> None:
        if self.received is None:
            self.received = signum
            self._at = time.monotonic()
            for listener in list(self.listeners):
                listener()

    @property
    def requested(self) -> bool:
        return self.received is not None

    def repeated(self) -> bool:
        """True when a further signal comes after the repeat window (a cold stop)."""
        return self.requested and time.monotonic() - self._at >= REPEAT_WINDOW_S


class StopsCleanly(BaseWorker):
    """An RQ worker whose warm shutdown is a flag, looked at between jobs."""

    #: Shared with ``workers.rq_adaptations.restart.run``, which installs it outside RQ's loop.
    stop_signal: StopSignal = StopSignal()

    @property
    def stop_requested(self) -> bool:
        return self.stop_signal.requested

    #: The id of the job a stop interrupted, until it is put back.
    _cut_short: str | None = None

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """RQ's signal handler: a warm stop the first time (no raise, no Redis call), a cold
        stop when signalled again later."""
        if not self.stop_signal.requested:
            self.stop_signal.record(signum)
            self._stop_requested = True  # ends RQ's wait while suspended
            self.log.info("Worker %s: stop requested, finishing the job in hand", self.name)
            self._shorten_running_job()
            self.handle_warm_shutdown_request()  # Heroku's worker warns its horse
        elif self.stop_signal.repeated():
            self.log.warning("Worker %s: cold shut down", self.name)
            if self.horse_pid:
                self.kill_horse()
                self.wait_for_horse()
            raise SystemExit(1)

    def check_for_suspension(self, burst: bool) -> None:
        if self.stop_requested:  # recorded before RQ's handler was installed
            self._stop_requested = True
        super().check_for_suspension(burst)

    def _shorten_running_job(self) -> None:
        """Give a job running in this process ``JOB_GRACE_S`` more at most (see above)."""
        remaining = signal.alarm(0)  # RQ's death penalty: armed only while a job's code runs
        if remaining <= 0:
            return
        signal.signal(signal.SIGALRM, self._cut_job_short)
        signal.alarm(min(remaining, JOB_GRACE_S))

    def _cut_job_short(self, signum: int, frame: FrameType | None) -> None:
        in_hand: tuple[str, str] | None = getattr(self, "job_in_hand", None)
        self._cut_short = in_hand[1] if in_hand else self.get_current_job_id()
        raise CutShort(f"stopping: the job ran {JOB_GRACE_S} s past the stop request")

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        if job.id == self._cut_short:  # not a failure: one line, no traceback
            log.warning("job_put_back_on_stop", job_id=job.id, queue=job.origin,
                        grace_s=JOB_GRACE_S)
            return
        super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry: Any = None,
                           exc_string: str = "", execution: Execution | None = None) -> None:
        """RQ's failure handling, except for a job a stop cut short: that one leaves RQ's
        started registry and goes back to the front of its queue, no retry spent."""
        if job.id != self._cut_short:
            super().handle_job_failure(job, queue, started_job_registry=started_job_registry,
                                       exc_string=exc_string, execution=execution)
            return
        self._cut_short = None
        with self.connection.pipeline() as pipeline:
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            pipeline.execute()
        queue.enqueue_job(job, at_front=True)
