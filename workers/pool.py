"""``--concurrency N``: N worker processes in one container, each running one job at a time.

What this changes in RQ, and why: an RQ worker runs one job at a time, so with the
Procfile's one worker process a job that waits on a slow peer (a receiver hanging for
its whole timeout, a slow Insights page) held up every other alert. RQ's own
``WorkerPool`` starts its workers with its own loop and signal handling, without
callwatch's restart loop (``workers.rq_adaptations.restart``); here each child process runs that loop
itself. The parent only supervises: it passes SIGTERM and SIGINT on to the children
(once: Ctrl-C reaches the whole process group anyway), waits for them, and starts a
child again when one dies while no stop was asked for (after ``RESPAWN_WAIT_S``, so
a child that keeps dying does not spin). It exits 0 once every child has stopped
cleanly after a stop.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

import structlog

from workers.rq_adaptations.shutdown import StopSignal

#: Worker processes per container by default.
DEFAULT_CONCURRENCY = 4
#: Wait before starting a child again after it died.
RESPAWN_WAIT_S = 5.0
#: How often the parent looks at its children and the stop flag.
POLL_S = 0.5

log = structlog.get_logger(__name__)


def run_pool(concurrency: int, work: Callable[[str | None, StopSignal, int], int], *,
             name: str | None = None,
             stop: StopSignal | None = None) -> int:
    """Run ``work(name, stop, index)`` in ``concurrency`` child processes until a stop (``index``:
    0 to ``concurrency - 1``, kept by a replacement); return the exit code."""
    stop = (stop or StopSignal()).install()
    context = multiprocessing.get_context("fork")
    names = [f"{name}-{index}" if name else None for index in range(1, concurrency + 1)]
    children: dict[int, BaseProcess] = {}
    died_at: dict[int, float] = {}
    starts = [0] * concurrency

    def start(index: int) -> None:
        # A replacement needs a new name: its predecessor's may still be registered in RQ.
        name_ = names[index]
        if name_ and starts[index]:
            name_ = f"{name_}-r{starts[index]}"
        starts[index] += 1
        child = context.Process(target=_child, args=(work, name_, index),
                                name=f"callwatch-worker-{index + 1}", daemon=False)
        child.start()
        children[index] = child

    log.info("worker_pool_starting", processes=concurrency)
    for index in range(concurrency):
        start(index)
    forwarded = False
    while True:
        if stop.requested and not forwarded:
            forwarded = True
            for child in children.values():
                if child.pid is not None and child.exitcode is None:
                    os.kill(child.pid, signal.SIGTERM)
        alive = [child for child in children.values() if child.exitcode is None]
        if stop.requested and not alive:
            break
        for index, child in list(children.items()):
            if child.exitcode is None or stop.requested:
                continue
            moment = time.monotonic()
            if died_at.setdefault(index, moment) == moment:
                log.error("worker_process_died", process=child.name, exit_code=child.exitcode)
            elif moment - died_at[index] >= RESPAWN_WAIT_S:
                del died_at[index]
                start(index)
        time.sleep(POLL_S)
    failed = [child.exitcode for child in children.values() if child.exitcode != 0]
    log.info("worker_pool_stopped", processes=concurrency, failed=len(failed))
    return 0 if not failed else 1


def _child(work: Callable[[str | None, StopSignal, int], int], name: str | None,
           index: int) -> None:
    """A child's life, with a stop recorder of its own from its first instruction."""
    raise SystemExit(work(name, StopSignal().install(), index))
