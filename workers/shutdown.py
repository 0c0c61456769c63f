"""Stopping a worker on SIGTERM or SIGINT: promptly, at any moment, with exit code 0.

What this changes in RQ, and why:

* RQ installs its handlers only once ``work()`` has registered the worker; a signal
  before that took the default action (exit -15). A :class:`StopSignal` recorder is
  installed by ``workers.restart.run`` before RQ's loop and again once it is left, and
  RQ's handler (``request_stop``, replaced here) records into the same one, so a stop
  seen at any moment is honoured.
* RQ's idle handler raises ``StopRequested`` wherever the signal lands; raised inside a
  ``__del__`` it is swallowed and the worker went on listening. Here a signal only
  sets the flag, which ``workers.dequeue`` looks at every ``STOP_CHECK_S`` while idle
  and a busy worker looks at after its job.
* A second signal, a second or more after the first, is a cold stop (the running job
  is abandoned, the forking worker's horse killed), as in RQ.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

from rq.worker import BaseWorker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: How often an idle worker looks at the stop flag (its blocking dequeue's timeout).
STOP_CHECK_S = 1
#: A repeat within this long is the same stop (Ctrl-C reaches a whole process group).
REPEAT_WINDOW_S = 1.0


class StopSignal:
    """Records the first SIGTERM or SIGINT received while installed."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._at = 0.0

    def install(self) -> StopSignal:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.record)
        return self

    def record(self, signum: int, frame: FrameType | None = None) -> None:
        if self.received is None:
            self.received = signum
            self._at = time.monotonic()

    @property
    def requested(self) -> bool:
        return self.received is not None

    def repeated(self) -> bool:
        """True when a further signal comes after the repeat window (a cold stop)."""
        return self.requested and time.monotonic() - self._at >= REPEAT_WINDOW_S


class StopsCleanly(BaseWorker):
    """An RQ worker whose warm shutdown is a flag, looked at between jobs."""

    #: Shared with ``workers.restart.run``, which installs it outside RQ's loop.
    stop_signal: StopSignal = StopSignal()

    @property
    def stop_requested(self) -> bool:
        return self.stop_signal.requested

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """RQ's signal handler: a warm stop the first time (no raise, no Redis call), a cold
        stop when signalled again later."""
        if not self.stop_signal.requested:
            self.stop_signal.record(signum)
            self.log.info("Worker %s: stop requested, finishing the job in hand", self.name)
            self.handle_warm_shutdown_request()  # Heroku's worker warns its horse
        elif self.stop_signal.repeated():
            self.log.warning("Worker %s: cold shut down", self.name)
            if self.horse_pid:
                self.kill_horse()
                self.wait_for_horse()
            raise SystemExit(1)
