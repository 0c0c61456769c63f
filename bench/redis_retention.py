"""Benchmark: Redis bytes kept per analysed call, by key family, and for how long.

Run from the project root::

    .venv/bin/python bench/redis_retention.py [--calls 200] [--result-ttl SECONDS]

Plays ``--calls`` alerting calls (``sdk-error``) through the real pipeline in this
process: signed callbacks into the web app, the intake, the analysis job and one
webhook delivery each (a loopback Standard Webhooks receiver), all on a private
Redis. Then it sums ``MEMORY USAGE`` over every key left, grouped by family, and
reads each family's TTL. ``--result-ttl`` overrides the finished jobs' retention
(``workers.queues.RESULT_TTL_S``, 0 by default) to compare with RQ-style retention
(the previous setting was 86400 s for analyses).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis as redis_lib

import workers.queues
from devtools.pipeline import Pipeline, pipeline_settings
from devtools.redis_server import RedisServer
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import WebhookReceiver
from service.logs import configure_logging

_FAMILY = [
    (re.compile(r"^rq:job:"), "rq:job:<id> (job hash)"),
    (re.compile(r"^rq:results:"), "rq:results:<id> (result stream)"),
    (re.compile(r"^callwatch:call:"), "callwatch:call:<sid> (intake record)"),
    (re.compile(r"^callwatch:delivered:"), "callwatch:delivered:<sink>:<alert> (ledger)"),
    (re.compile(r"^callwatch:metrics:"), "callwatch:metrics:* (counters, fixed)"),
]


def family(key: str) -> str:
    for pattern, name in _FAMILY:
        if pattern.search(key):
            return name
    return re.sub(r"CA[0-9a-f]{32}|[0-9a-f]{32}|alr_[a-z0-9]+", "<id>", key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--result-ttl", type=int, default=None)
    args = parser.parse_args()
    configure_logging("WARNING", "console", cache=False)
    if args.result_ttl is not None:
        workers.queues.RESULT_TTL_S = args.result_ttl
    with RedisServer() as server, SimulatorServer() as simulator, \
            WebhookReceiver(WEBHOOK_SECRET) as receiver:
        redis = redis_lib.Redis.from_url(server.url)
        settings = pipeline_settings(server.url, simulator, webhooks=[receiver.url],
                                     secret=WEBHOOK_SECRET)
        pipe = Pipeline(settings, redis, simulator)
        before = int(redis.info("memory")["used_memory"])
        for _ in range(args.calls):
            pipe.play("sdk-error")
        pipe.drain(until=lambda: len(receiver.unique_ids()) >= args.calls, timeout=600)
        after = int(redis.info("memory")["used_memory"])
        sizes: dict[str, int] = defaultdict(int)
        counts: dict[str, int] = defaultdict(int)
        ttls: dict[str, set[int]] = defaultdict(set)
        for raw in redis.scan_iter(count=1000):
            key = raw.decode()
            name = family(key)
            sizes[name] += int(redis.memory_usage(key) or 0)
            counts[name] += 1
            ttl = int(redis.ttl(key))
            ttls[name].add(-1 if ttl < 0 else round(ttl, -2))
        redis.close()
    print(f"calls={args.calls} result_ttl={workers.queues.RESULT_TTL_S} "
          f"delivered={len(receiver.unique_ids())}")
    print(f"{'key family':50} {'keys':>6} {'bytes/call':>11} {'TTL (s)':>12}")
    for name in sorted(sizes, key=lambda n: -sizes[n]):
        ttl = sorted(ttls[name])
        span = "none" if ttl == [-1] else f"{ttl[0]}" if len(ttl) == 1 else f"{ttl[0]}-{ttl[-1]}"
        print(f"{name:50} {counts[name]:>6} {sizes[name] / args.calls:>11.0f} {span:>12}")
    total = sum(sizes.values())
    print(f"MEMORY USAGE total: {total / args.calls:.0f} bytes/call; "
          f"INFO used_memory delta: {(after - before) / args.calls:.0f} bytes/call")


if __name__ == "__main__":
    main()
