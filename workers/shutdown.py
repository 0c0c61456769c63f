"""Stopping a worker on SIGTERM or SIGINT: cleanly, promptly, at any moment.

RQ's own handling has three gaps, each of which left a worker running or killed it
with exit -15 in our tests:

* RQ installs its handlers only after the worker has registered and logged
  ``Listening on``; a signal before that took the default action (exit -15).
* An idle worker's handler raises ``StopRequested`` inside whatever code the signal
  interrupted; raised inside a ``__del__`` it is swallowed ("Exception ignored"),
  and the worker went on listening.
* The handlers stay installed, bound to a dead worker, when Redis drops the worker
  out of its loop and ``workers.worker.run`` waits for Redis to come back.

Here a stop signal only sets a flag. :class:`StopSignal` covers the time outside
RQ's loop; :class:`StopsCleanly` replaces RQ's handler and waits for jobs in
slices of ``STOP_CHECK_S``, so an idle worker sees the flag within that time and a
busy one after its job, as before.
"""

from __future__ import annotations

import signal
from types import FrameType

from rq.job import Job
from rq.queue import Queue
from rq.utils import now
from rq.worker import BaseWorker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: How often an idle worker looks at the stop flag (its blocking dequeue's timeout).
STOP_CHECK_S = 1


class StopSignal:
    """Records the first SIGTERM or SIGINT received while installed."""

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> StopSignal:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    @property
    def requested(self) -> bool:
        return self.received is not None


class StopsCleanly(BaseWorker):
    """An RQ worker whose warm shutdown is a flag, looked at between jobs."""

    #: Set on SIGTERM/SIGINT (RQ's ``_stop_requested`` is set with it).
    stop_signalled = False
    #: The signal recorder in place before RQ's handlers; a stop it saw is honoured.
    early_stop: StopSignal | None = None

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """RQ's warm shutdown minus the raise (and minus its Redis calls in a signal
        handler); a second signal still forces a cold stop."""
        self.stop_signalled = True
        self._stop_requested = True
        self._shutdown_requested_date = now()
        for stop_signum in STOP_SIGNALS:
            signal.signal(stop_signum, self.request_force_stop)
        self.handle_warm_shutdown_request()

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if self.early_stop is not None and self.early_stop.requested:
            self.log.info("Worker %s: stop requested while starting", self.name)
            self.stop_signalled = True
            self._stop_requested = True

    def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                     max_idle_time: int | None = None) -> tuple[Job, Queue] | None:
        """Wait for a job in slices of ``STOP_CHECK_S``; None once a stop is requested,
        which ends RQ's loop as an idle timeout does."""
        if timeout is None or max_idle_time is not None:  # burst, or RQ's own idle limit
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=STOP_CHECK_S)
            if result is not None:
                return result
        return None
