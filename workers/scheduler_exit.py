"""What this changes in RQ, and why: a crashed scheduler process ends with one JSON log
line, not a second, raw traceback.

RQ runs its scheduler in a forked process whose target, ``rq.scheduler.run``, logs any
exception with its traceback (``rq.scheduler``: one JSON line through ``service.logs``)
and then re-raises it. ``multiprocessing`` then prints the same traceback again, raw, on
stderr (its ``BaseProcess._bootstrap``): some 60 lines of plain text in a log that is
otherwise one JSON object a line, each line a separate "event" to a log search. So the
process target becomes ``run_scheduler``: RQ's own ``run``, and after it has logged the
exception, ``SystemExit(1)``, which ``multiprocessing`` turns into exit code 1 quietly.
The exit code, and what the worker does about a dead scheduler, stay RQ's.

Relies on: ``RQScheduler.start`` looking up the module-level ``run`` when it forks (pinned
by ``tests/integration/test_json_logs.py``).
"""

from __future__ import annotations

from typing import Any

import rq.scheduler

_rq_run = rq.scheduler.run


def run_scheduler(scheduler: Any) -> None:
    """RQ's scheduler process target, exiting with code 1 instead of re-raising."""
    try:
        _rq_run(scheduler)
    except Exception:  # RQ logged it with its traceback just now
        raise SystemExit(1) from None


def install() -> None:
    """Make RQ fork its scheduler into ``run_scheduler`` (once per process, idempotent)."""
    rq.scheduler.run = run_scheduler
