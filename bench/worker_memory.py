"""Benchmark: memory of an idle ``python -m workers.worker``, default concurrency and one.

Run from the project root: ``.venv/bin/python bench/worker_memory.py``. Starts the
worker against a private Redis, waits until every worker process listens, and prints
each process's RSS (the supervising parent, the worker processes, RQ's scheduler
process when this worker holds the lock) and their summed PSS (shared pages counted
once: the worker processes are forked from the parent after the imports).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.processes import settings_env, worker
from devtools.redis_server import RedisServer


def status_mb(pid: int, path: str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}") as lines:
            for line in lines:
                if line.startswith(field):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found = [pid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if parent == pid:
            found += tree(int(entry))
    return found


def main() -> None:
    with RedisServer() as server:
        for extra, listening in (((), 4), (("--concurrency", "1"), 1)):
            process = worker(settings_env(server.url), *extra).start()
            try:
                process.wait_for(lambda p=process, n=listening: len(p.events("worker_listening")) >= n,
                                 timeout=60)
                time.sleep(3)
                assert process.proc is not None
                pids = tree(process.proc.pid)
                rss = [status_mb(pid, "status", "VmRSS:") for pid in pids]
                pss = sum(status_mb(pid, "smaps_rollup", "Pss:") for pid in pids)
                print(" ".join(extra) or "default", f"processes={len(pids)} rss_mb={rss} pss_mb={pss}")
            finally:
                process.close()


if __name__ == "__main__":
    main()
