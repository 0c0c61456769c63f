"""A small HTTP load generator for the benchmarks: closed-loop throughput, open-loop latency.

Pure Python (``http.client`` over keep-alive connections), so a benchmark needs
nothing beyond the project's virtual environment. Load comes from several
processes (the GIL would otherwise cap the generator before the server) each with
several threads, and each thread keeps one connection open.

* ``closed_loop``: every thread sends its next request as soon as the previous
  answer arrives, for a fixed time; the result is answers per second.
* ``open_loop``: requests are due at a fixed rate whatever the server does, and a
  latency is measured from the request's *intended* send time, so a stalled
  server is charged for the requests queued behind the stall (no coordinated
  omission).

Every loop is bounded: it stops at its deadline or when its requests run out,
whichever is first, and talks to loopback addresses only. Requests are built
(and signed) before timing starts; each is sent at most once, so a benchmark can
give every request a unique key (a CallSid) and check what the server stored.

The load processes are started with ``spawn``: a script that calls
``closed_loop`` or ``open_loop`` must do so under ``if __name__ == "__main__":``
(the children import the main module again).
"""

from __future__ import annotations

import http.client
import math
import multiprocessing
import multiprocessing.synchronize
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
#: Socket timeout for one request; a request over it counts as an error.
REQUEST_TIMEOUT_S = 5.0
#: Longest the parent waits past a run's own duration before it stops its children.
CHILD_GRACE_S = 30.0


@dataclass(frozen=True)
class Request:
    """One prepared HTTP request; ``key`` names it in the results (e.g. its CallSid)."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    key: str = ""


@dataclass(frozen=True)
class Target:
    """Where the load goes: a loopback host and port."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if self.host not in LOOPBACK:
            raise ValueError(f"the load generator only targets loopback, not {self.host!r}")


@dataclass(frozen=True)
class ThroughputResult:
    """What a closed-loop run achieved inside its measured window."""

    ok: int
    errors: int
    seconds: float
    accepted_keys: frozenset[str]
    sent: int
    exhausted: bool
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """2xx answers per second inside the measured window."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class LatencyResult:
    """Latencies (seconds, from each request's intended send time) of an open-loop run."""

    latencies: tuple[float, ...]
    errors: int
    rate: float
    accepted_keys: frozenset[str]
    statuses: dict[int, int] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0..1) by nearest rank; NaN with no answers."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
        return ordered[rank - 1]

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    @property
    def max(self) -> float:
        return max(self.latencies) if self.latencies else float("nan")


class _Connection:
    """One keep-alive connection that reconnects after any error."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._conn: http.client.HTTPConnection | None = None

    def send(self, request: Request) -> int:
        """Send and read the whole answer; the status, or -1 on a connection error."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._target.host, self._target.port,
                                                    timeout=REQUEST_TIMEOUT_S)
        try:
            self._conn.request(request.method, request.path, body=request.body,
                               headers=dict(request.headers))
            answer = self._conn.getresponse()
            answer.read()
            if answer.will_close:
                self.close()
            return answer.status
        except (OSError, http.client.HTTPException):
            self.close()
            return -1

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _closed_thread(target: Target, requests: Sequence[Request], picker: Iterator[int],
                   warmup_end: float, end: float, out: list[Any]) -> None:
    conn = _Connection(target)
    ok = errors = sent = 0
    statuses: dict[int, int] = {}
    accepted: list[str] = []
    exhausted = True
    for index in picker:
        if time.monotonic() >= end:
            exhausted = False
            break
        request = requests[index]
        status = conn.send(request)
        sent += 1
        done = time.monotonic()
        if 200 <= status < 300:
            accepted.append(request.key)
        statuses[status] = statuses.get(status, 0) + 1
        if warmup_end <= done < end:
            if 200 <= status < 300:
                ok += 1
            else:
                errors += 1
    conn.close()
    out.append((ok, errors, sent, statuses, accepted, exhausted))


def _closed_child(target: Target, requests: Sequence[Request], threads: int, warmup_s: float,
                  seconds: float, barrier: multiprocessing.synchronize.Barrier,
                  results: Any) -> None:
    out: list[Any] = []
    picker = _Picker(len(requests))
    barrier.wait(timeout=CHILD_GRACE_S)
    start = time.monotonic()
    warmup_end, end = start + warmup_s, start + warmup_s + seconds
    workers = [threading.Thread(target=_closed_thread,
                                args=(target, requests, picker, warmup_end, end, out))
               for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(out)


def _open_thread(target: Target, requests: Sequence[Request], due: list[float],
                 picker: Iterator[int], out: list[Any]) -> None:
    conn = _Connection(target)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted: list[str] = []
    errors = 0
    while True:
        index = next(picker, None)
        if index is None:
            break
        intended = due[index]
        delay = intended - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        status = conn.send(requests[index])
        latency = time.monotonic() - intended
        statuses[status] = statuses.get(status, 0) + 1
        if 200 <= status < 300:
            latencies.append(latency)
            accepted.append(requests[index].key)
        else:
            errors += 1
    conn.close()
    out.append((latencies, errors, statuses, accepted))


class _Picker:
    """Hands out request indices in order to the threads of one process."""

    def __init__(self, count: int) -> None:
        self._next = 0
        self._count = count
        self._lock = threading.Lock()

    def __iter__(self) -> _Picker:
        return self

    def __next__(self) -> int:
        with self._lock:
            if self._next >= self._count:
                raise StopIteration
            self._next += 1
            return self._next - 1


def _open_child(target: Target, requests: Sequence[Request], threads: int, interval_s: float,
                offset_s: float, barrier: multiprocessing.synchronize.Barrier,
                results: Any) -> None:
    out: list[Any] = []
    barrier.wait(timeout=CHILD_GRACE_S)
    start = time.monotonic() + 0.05
    due = [start + offset_s + i * interval_s for i in range(len(requests))]
    picker = _Picker(len(requests))
    workers = [threading.Thread(target=_open_thread, args=(target, requests, due, picker, out))
               for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(out)


def _run_children(child: Any, per_child_args: list[tuple[Any, ...]], limit_s: float) -> list[Any]:
    """Start one process per argument tuple, release them together, gather their lists."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(per_child_args))
    results = ctx.Queue()
    procs = [ctx.Process(target=child, args=(*args, barrier, results), daemon=True)
             for args in per_child_args]
    for proc in procs:
        proc.start()
    gathered: list[Any] = []
    deadline = time.monotonic() + limit_s + CHILD_GRACE_S
    try:
        for _ in procs:
            gathered.extend(results.get(timeout=max(0.1, deadline - time.monotonic())))
    except BaseException:
        # Interrupted or a child went silent: stop them now rather than at the deadline.
        for proc in procs:
            proc.terminate()
        raise
    finally:
        for proc in procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join()
    return gathered


def closed_loop(target: Target, requests: Sequence[Request], *, seconds: float,
                processes: int = 2, threads: int = 8, warmup_s: float = 1.0) -> ThroughputResult:
    """Send as fast as answers come back for ``warmup_s + seconds``; count the last ``seconds``.

    Each process takes every ``processes``-th request and its threads take the next
    one as they come free, so each request is sent at most once. A process that runs
    out of requests stops early (``exhausted`` is then True and the rate a lower bound).
    """
    per_child = [(target, list(requests[p::processes]), threads, warmup_s, seconds)
                 for p in range(processes)]
    parts = _run_children(_closed_child, per_child, warmup_s + seconds)
    statuses: dict[int, int] = {}
    for part in parts:
        for status, n in part[3].items():
            statuses[status] = statuses.get(status, 0) + n
    return ThroughputResult(
        ok=sum(p[0] for p in parts), errors=sum(p[1] for p in parts), seconds=seconds,
        sent=sum(p[2] for p in parts), statuses=statuses,
        accepted_keys=frozenset(k for p in parts for k in p[4]),
        exhausted=any(p[5] for p in parts),
    )


def open_loop(target: Target, requests: Sequence[Request], *, rate: float,
              processes: int = 1, threads: int = 8) -> LatencyResult:
    """Send every request at its due time (``rate`` per second overall) and time each answer.

    The run lasts ``len(requests) / rate`` seconds plus the last answers. Process
    ``p`` owns every ``processes``-th due time, so the processes interleave evenly.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    interval = processes / rate
    per_child = [(target, list(requests[p::processes]), threads, interval, p / rate)
                 for p in range(processes)]
    parts = _run_children(_open_child, per_child, len(requests) / rate + REQUEST_TIMEOUT_S)
    statuses: dict[int, int] = {}
    for part in parts:
        for status, n in part[2].items():
            statuses[status] = statuses.get(status, 0) + n
    return LatencyResult(
        latencies=tuple(lat for p in parts for lat in p[0]), errors=sum(p[1] for p in parts),
        rate=rate, statuses=statuses, accepted_keys=frozenset(k for p in parts for k in p[3]),
    )
