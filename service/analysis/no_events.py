"""The calls that had a Voice SDK party but never got Insights events.

Each such call is logged at INFO with a hint; when it keeps happening (Advanced
Features off, the status callback on the wrong leg), one aggregate warning per
hour says how many calls it was. The count is per process: each worker warns at
most once an hour, which is enough to be noticed and cannot flood the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

#: What to check when an SDK call has no events.
HINT = ("is Voice Insights Advanced Features on, and is the status callback on the leg "
        "whose From or To is the client: identity (the <Dial><Client> leg)?")
WARN_EVERY_S = 3600.0

log = structlog.get_logger(__name__)


class NoEventsNotice:
    """Counts SDK calls given up without events; warns at most once per ``every_s``."""

    def __init__(self, every_s: float = WARN_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._last_warning: float | None = None

    def gave_up(self, rechecks: int) -> None:
        """One call given up: an INFO line, and the hourly warning when it is due."""
        log.info("analysis_gave_up", rechecks=rechecks,
                 message=f"Insights still has no events for this call; {HINT}")
        with self._lock:
            self._count += 1
            now = self._clock()
            if self._last_warning is not None and now - self._last_warning < self._every_s:
                return
            calls, self._count, self._last_warning = self._count, 0, now
        log.warning("sdk_calls_without_events", calls=calls, period_s=int(self._every_s),
                    message=f"{calls} call(s) with a Voice SDK party had no Insights events "
                            f"after every re-check; {HINT}")


#: The process's notice (one per worker process, shared by its threads).
NOTICE = NoEventsNotice()
