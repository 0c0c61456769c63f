"""Benchmark: two parts of the callback route alone, each against its baseline in the same run.

Run from the project root::

    .venv/bin/python bench/hot_parts.py [--count 3000] [--rounds 5]

* **Admission**: client CPU (this process's user + system time) per ``Intake.admit`` of a
  new call through the web process's intake (its client's pool), against
  the same Lua script called through redis-py's client on a connection of its own
  (``Redis(single_connection_client=True).register_script``: what the route did before,
  one such client per thread), one thread, a private Redis.
* **Log line**: CPU per ``analysis_scheduled`` line as the route writes it (structlog
  rendering it alone), against a standard-library record of the same fields rendered by
  the same formatter (the path gunicorn's access line takes), JSON to ``/dev/null``.

Each figure is the minimum over ``--rounds`` rounds (the least disturbed by other work on
a shared machine); the ratio is callwatch's path over the baseline.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import structlog  # noqa: E402

from devtools.redis_server import RedisServer  # noqa: E402
from service.intake import _ADMIT, CALL_TTL_S, INTAKE_KEY, Intake, _compact_json, call_key  # noqa: E402
from service.logs import configure_logging  # noqa: E402

CALL = {"call_sid": "", "account_sid": "AC" + "0" * 32, "status": "completed",
        "direction": "inbound", "from": "+14155550123", "to": "client:alice", "duration_s": 30,
        "parent_call_sid": None, "sip_response_code": None, "timestamp": None,
        "sequence_number": 3}
LINE = {"delay_s": 90, "call_sid": "CA" + "0" * 32, "status": "completed",
        "direction": "inbound", "from": "+1415*****23", "to": "client:alice", "duration_s": 30,
        "parent_call_sid": None, "sequence_number": 3}


def best_us(run: Callable[[], None], count: int, rounds: int) -> float:
    """The least CPU per call of ``run`` over ``rounds`` rounds of ``count`` calls, µs."""
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(count):
            run()
        best = min(best, (time.process_time() - began) / count * 1e6)
    return best


def admissions(count: int, rounds: int) -> tuple[float, float]:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2,
                                      health_check_interval=30)
        intake = Intake(client)
        kept = redis.Redis(connection_pool=client.connection_pool, single_connection_client=True)
        script = kept.register_script(_ADMIT)
        numbers = iter(range(1, 10**9))

        def through_intake() -> None:
            call = {**CALL, "call_sid": f"CA{next(numbers):032x}"}
            intake.admit(call, due_at=time.time() + 90)

        def through_client() -> None:
            sid = f"CA{next(numbers):032x}"
            script(keys=[call_key(sid), INTAKE_KEY],
                   args=[_compact_json({**CALL, "call_sid": sid}), repr(time.time() + 90), CALL_TTL_S, sid])

        for run in (through_intake, through_client):  # warm: connections, script loaded
            best_us(run, 200, 1)
        ours = best_us(through_intake, count, rounds)
        baseline = best_us(through_client, count, rounds)
        kept.close()
        client.close()
    return ours, baseline


def log_lines(count: int, rounds: int) -> tuple[float, float]:
    with open(os.devnull, "w") as devnull:
        configure_logging("INFO", "json", stream=devnull)
        structlog.contextvars.bind_contextvars(request_id="0" * 32, call_sid=LINE["call_sid"])
        ours_log = structlog.get_logger("service.web.callbacks")
        stdlib_log = logging.getLogger("gunicorn.access")
        ours = best_us(lambda: ours_log.info("analysis_scheduled", **LINE), count, rounds)
        baseline = best_us(lambda: stdlib_log.info("analysis_scheduled", extra=LINE),
                           count, rounds)
        structlog.contextvars.clear_contextvars()
    return ours, baseline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rows = [("admission (intake through the pool / redis-py client, kept connection)",
             *admissions(args.count, args.rounds)),
            ("log line (structlog alone / stdlib record, same formatter)",
             *log_lines(args.count, args.rounds))]
    print(f"{'part':<60} {'callwatch µs':>12} {'baseline µs':>12} {'ratio':>6}")
    for name, ours, baseline in rows:
        print(f"{name:<60} {ours:>12.1f} {baseline:>12.1f} {ours / baseline:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
