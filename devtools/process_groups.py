"""Stopping the process groups that ``make run``, the benchmarks and the tests start.

Every child is started with ``start_new_session=True``, so its pid is its group's
id and one signal reaches it and everything it forked (gunicorn's workers, RQ's
scheduler and work horses).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable


def stop_groups(processes: Iterable[subprocess.Popen[bytes]], *, timeout_s: float = 15.0) -> None:
    """SIGTERM every group (a graceful stop), wait until each is empty, SIGKILL what lingers.

    A group is signalled even when its leader has already exited, so processes it
    forked and left behind (a gunicorn worker whose master died) are stopped too.
    All the waiting shares one deadline, ``timeout_s`` from now.
    """
    processes = list(processes)
    for process in processes:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(process.pid, signal.SIGKILL)  # nothing left to kill after a clean stop
        process.wait()


def group_alive(pgid: int) -> bool:
    """True while some process (a zombie leader included) is in the group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - the id was reused by someone else's group
        return False
    return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
