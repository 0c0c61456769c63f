"""Stopping the process groups that ``make run``, the benchmarks and the tests start.

Every child is started with ``start_new_session=True``, so its pid is its group's
id and one signal reaches it and everything it forked (gunicorn's workers, RQ's
scheduler and work horses).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable


def stop_groups(processes: Iterable[subprocess.Popen[bytes]], *, timeout_s: float = 15.0) -> None:
    """SIGTERM every still-running group (a graceful stop), SIGKILL those that linger."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
