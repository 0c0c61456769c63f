"""Benchmark: the web process's admissions over a Redis with a realistic round trip, the
group commit (``service.redis_group_commit``) against redis-py's ``BlockingConnectionPool``.

Run from the project root::

    .venv/bin/python bench/group_commit_rtt.py [--delay-ms 1.5] [--pool-size 8]

A private Redis sits behind ``bench/delay_proxy.py`` (``--delay-ms`` each way: 3 ms a round
trip at 1.5, a hosted Redis in the same region). This process is gevent-patched, as the web
process is, and admits calls through ``service.intake.Intake`` two ways:

* **group commit**: ``Intake(batched=True, gather=take_turn)``, the web process's path: one
  kept connection, admissions that arrive during a round trip share the next one;
* **pool**: ``Intake(batched=False)`` on a client whose pool is a
  ``BlockingConnectionPool(max_connections=--pool-size)``: at most that many connections,
  a greenlet waits for a free one.

Two loads: a **burst** (``--burst`` callbacks at once, ``--rounds`` times: a storm's calls
ending together) and a **steady** arrival rate (``--rate`` per second for ``--seconds``, each
callback its own greenlet). Each prints the admission's latency (p50, p99, from the
callback's start), the client CPU per admission and the Redis connections the variant held.
Ratios are group commit over pool, same run.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from itertools import count  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import redis as redis_lib  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.redis_server import RedisServer  # noqa: E402
from service.intake import Intake  # noqa: E402
from service.web.gevent_turn import take_turn  # noqa: E402

_SIDS = count()


def _call() -> dict[str, str]:
    return {"call_sid": f"CA{next(_SIDS):032x}", "account_sid": "AC" + "1" * 32, "status": "completed"}


def _timed(intake: Intake, latencies: list[float]) -> Callable[[], None]:
    def admit() -> None:
        start = time.perf_counter()
        intake.admit(_call(), due_at=1000.0)
        latencies.append(time.perf_counter() - start)
    return admit


def burst(intake: Intake, size: int, rounds: int) -> list[float]:
    latencies: list[float] = []
    for _ in range(rounds):
        gevent.joinall([gevent.spawn(_timed(intake, latencies)) for _ in range(size)])
    return latencies


def steady(intake: Intake, rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    greenlets = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        wait = start + n / rate - time.perf_counter()
        if wait > 0:
            gevent.sleep(wait)
        greenlets.append(gevent.spawn(_timed(intake, latencies)))
    gevent.joinall(greenlets)
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(name: str, intake: Intake, load: Callable[[Intake], list[float]],
        direct: redis_lib.Redis) -> dict[str, float]:
    load(intake)  # warm: script loaded, connections opened
    before_clients = len(direct.client_list())
    cpu = time.process_time()
    latencies = load(intake)
    cpu = time.process_time() - cpu
    held = len(direct.client_list()) - 1  # minus the counting connection itself
    figures = {"p50_ms": _pct(latencies, 0.5), "p99_ms": _pct(latencies, 0.99),
               "mean_ms": statistics.fmean(latencies) * 1000,
               "cpu_us": cpu / len(latencies) * 1e6, "connections": held}
    print(f"  {name:13s} p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  "
          f"mean {figures['mean_ms']:6.2f} ms  CPU {figures['cpu_us']:6.1f} µs/admission  "
          f"Redis connections {held} (before the run {before_clients - 1})", flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=1.5)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--burst", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    server = RedisServer().start()
    proxy = subprocess.Popen([sys.executable, str(ROOT / "bench" / "delay_proxy.py"),
                              "--target-port", str(server.port), "--delay-ms", str(args.delay_ms)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert proxy.stdout is not None
        port = int(proxy.stdout.readline())
        direct = redis_lib.Redis(port=server.port)
        loads: list[tuple[str, Callable[[Intake], list[float]]]] = [
            (f"burst of {args.burst} x {args.rounds}", lambda i: burst(i, args.burst, args.rounds)),
            (f"steady {args.rate:g}/s for {args.seconds:g} s", lambda i: steady(i, args.rate, args.seconds)),
        ]
        print(f"round trip through the proxy: {2 * args.delay_ms:g} ms added; "
              f"pool: BlockingConnectionPool(max_connections={args.pool_size})")
        for title, load in loads:
            print(title)
            results = {}
            for name in ("group commit", "pool"):
                direct.flushall()
                if name == "group commit":
                    client = redis_lib.Redis(port=port)
                    intake = Intake(client, batched=True, gather=take_turn)
                else:
                    pool = redis_lib.BlockingConnectionPool(port=port, max_connections=args.pool_size,
                                                            timeout=10)
                    client = redis_lib.Redis(connection_pool=pool)
                    intake = Intake(client, batched=False)
                results[name] = run(name, intake, load, direct)
                client.close()
                client.connection_pool.disconnect()
            gc, pl = results["group commit"], results["pool"]
            print(f"  ratio group commit / pool: p50 {gc['p50_ms'] / pl['p50_ms']:.2f}, "
                  f"p99 {gc['p99_ms'] / pl['p99_ms']:.2f}, CPU {gc['cpu_us'] / pl['cpu_us']:.2f}",
                  flush=True)
    finally:
        proxy.kill()
        proxy.wait()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
