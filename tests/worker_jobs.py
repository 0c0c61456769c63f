"""Job functions that real worker processes run in tests (imported by dotted path)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import redis as redis_lib
from rq import get_current_job


def shut_redis_down_once(marker: str) -> str:
    """The first run shuts the worker's Redis down (saving its data) in the middle of the
    job; every run adds one to the count in ``marker``."""
    path = Path(marker)
    runs = int(path.read_text()) if path.exists() else 0
    path.write_text(str(runs + 1))
    if runs == 0:
        job = get_current_job()
        assert job is not None
        with contextlib.suppress(redis_lib.ConnectionError):
            job.connection.shutdown(save=True)
    return f"run {runs + 1}"
