"""Benchmark: packing the Redis commands a worker sends, redis-py's packer against callwatch's.

Run from the project root::

    .venv/bin/python bench/redis_packing.py [--rounds 200000]

Every command a worker sends is packed into Redis's protocol before it leaves:
redis-py's ``HiredisRespSerializer`` walks the arguments in Python (a scan for
``memoryview``, each argument through the client's ``Encoder``) and then calls
hiredis; ``service.redis_packing.DirectPacker`` hands them to hiredis as they are. The
commands below are shaped like a worker's: a short ``GET``, an ``EVALSHA`` of the ledger
with a few keys and arguments, one of the metrics script with a few dozen, RQ's unique
enqueue with the job's hash (its data a few KB), and a pipeline-sized ``HINCRBY``. Both
packers run in this process, interleaved, best of five; the ratio is what to read.

Then the same commands sent to a private Redis and answered (``--trips`` each, one
client per packer, interleaved, best of five): this process's CPU per round trip, the
client's whole cost of a command (pool, socket, reply), of which the packing is a part.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402
from redis._parsers.encoders import Encoder  # noqa: E402
from redis.connection import HiredisRespSerializer, PythonRespSerializer  # noqa: E402

from devtools.redis_server import RedisServer  # noqa: E402
from service.redis_packing import DirectPacker, pack_directly  # noqa: E402

_encode = Encoder("utf-8", "strict", False).encode
REDIS_PY = HiredisRespSerializer(PythonRespSerializer(6000, _encode).pack, _encode)
DIRECT = DirectPacker()

COMMANDS = {
    "GET": ("GET", "callwatch:worker-alive:bench-0-1"),
    "ledger EVALSHA (2 keys, 3 args)": (
        "EVALSHA", "0bf8279c" * 5, 2, "callwatch:delivered:slack:alr_x", "callwatch:lease:slack:alr_x",
        "bench-0-1/7f3a9c2e:140213", 30000, "callwatch:worker-dead:"),
    "metrics EVALSHA (1 key, 40 args)": (
        "EVALSHA", "5667dc4c" * 5, 1, "callwatch:metrics",
        *(x for i in range(20) for x in (f'callwatch_deliveries_total{{sink="s{i}"}}', 1.0))),
    "RQ unique enqueue (3 keys, 24 args, 3 KB data)": (
        "EVALSHA", "3fb0856a" * 5, 3, "rq:job:analyze-CA1", "rq:queue:analysis", "rq:queues",
        "analyze-CA1", "R", -1, *(x for i in range(10) for x in (f"field{i}", f"value {i}")),
        "data", b"\x78\x9c" + b"\x01" * 3000),
    "HINCRBY": ("HINCRBY", "callwatch:calls-analysed", "1765136000", 1),
}


def _round_trips(trips: int) -> None:
    server = RedisServer().start()
    try:
        clients = {"redis-py": redis_lib.Redis.from_url(server.url),
                   "direct": pack_directly(redis_lib.Redis.from_url(server.url))}
        sha = clients["redis-py"].script_load("return #ARGV")
        _, _, *metrics = COMMANDS["metrics EVALSHA (1 key, 40 args)"]
        sent = {"GET": ("GET", "callwatch:worker-alive:bench-0-1"),
                "EVALSHA (2 keys, 3 args)": ("EVALSHA", sha, 2, "k1", "k2", "bench-0-1/7f3a:1", 30000, "p:"),
                "EVALSHA (1 key, 40 args)": ("EVALSHA", sha, *metrics)}
        print("\n| round trip | redis-py, µs CPU | callwatch, µs CPU | ratio |")
        print("|---|---:|---:|---:|")
        for name, command in sent.items():
            best: dict[str, float] = {}
            for _ in range(5):
                for label, client in clients.items():
                    started = time.process_time()
                    for _ in range(trips):
                        client.execute_command(*command)
                    spent = (time.process_time() - started) / trips * 1e6
                    best[label] = min(best.get(label, spent), spent)
            print(f"| {name} | {best['redis-py']:.1f} | {best['direct']:.1f} | "
                  f"{best['direct'] / best['redis-py']:.2f} |")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--trips", type=int, default=20_000)
    args = parser.parse_args()
    print("| command | redis-py, µs | callwatch, µs | ratio |")
    print("|---|---:|---:|---:|")
    for name, command in COMMANDS.items():
        times: dict[str, list[float]] = {"redis-py": [], "direct": []}
        for _ in range(5):
            for label, packer in (("redis-py", REDIS_PY), ("direct", DIRECT)):
                pack = functools.partial(packer.pack, *command)
                times[label].append(timeit.timeit(pack, number=args.rounds))
        before, after = (min(times[label]) / args.rounds * 1e6 for label in ("redis-py", "direct"))
        print(f"| {name} | {before:.2f} | {after:.2f} | {after / before:.2f} |")
    _round_trips(args.trips)


if __name__ == "__main__":
    main()
