"""Benchmark: what the incident bookkeeping adds to the analysis of one call.

Run from the project root::

    .venv/bin/python bench/incidents.py [--calls 2000] [--rounds 5]

In one process against a private Redis (``devtools.redis_server``), the analysis
step (``service.analysis.step.analyze_step``) runs on the simulator's ``clean`` and
``sdk-error`` calls held in memory (no HTTP: the Insights fetch is a list), four ways:

- ``no alert, without``: a clean call, no incident desk (the analysis alone);
- ``no alert, with``: the same with the desk: the call is counted in the ratio's
  10-second buckets (one pipelined round trip: HINCRBY, HDEL, EXPIRE);
- ``alert, without``: a failing call, its deliveries built per sink;
- ``alert, with``: the same with the desk on a route with storm and ratio on: the
  count above plus one Lua script per route (the storm window, the decision marker,
  the ratio numerator and the fold once an incident is open).

Each alerting call has its own CallSid, so the storm opens an incident after 10 and
folds the rest (the steady state of a storm). Reported: microseconds per call
(median over rounds), the ratio to the same call without the desk, and the Redis
commands per call with it (``INFO commandstats``, a Lua script's inner calls
included; the ``INFO`` itself excluded): the same for 200 calls or 200,000.

``--slack-rate`` measures instead what bounds a storm's Slack messages: one real
worker (``python -m workers.worker``), 12 Slack alerts scheduled at once, the Slack
stand-in at one message a second; the messages a second achieved and the gaps.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402
import structlog  # noqa: E402

from devtools.redis_server import RedisServer  # noqa: E402
from service.analysis.step import AnalysisPolicy, AnalysisRequest, analyze_step  # noqa: E402
from service.calls import Call  # noqa: E402
from service.delivery.incidents.desk import IncidentDesk  # noqa: E402
from service.delivery.incidents.policy import RatioPolicy, StormPolicy  # noqa: E402
from service.delivery.incidents.store import IncidentStore  # noqa: E402
from service.delivery.routing import RouteMatch  # noqa: E402
from service.insights.events import Event, parse_events  # noqa: E402

SINKS = ("slack", "webhook-crm")
KINDS = {"slack": "chat", "webhook-crm": "webhook"}


def _events(failing: bool) -> list[Event]:
    """A 50-event call from the simulator's scenarios (clean or with an SDK error)."""
    from devtools.simulator.scenarios import ScenarioInput, build_call

    record = build_call("sdk-error" if failing else "clean",
                        ScenarioInput("CA" + "1" * 32, "AC" + "2" * 32, datetime.now(UTC),
                                      {}))
    return list(parse_events(record.events_on("sdk_edge")))


def commands(client: redis_lib.Redis) -> int:
    """Commands Redis has run so far (scripts' inner calls included)."""
    return sum(int(v["calls"]) for v in client.info("commandstats").values())


def run(client: redis_lib.Redis, calls: int, *, failing: bool, with_desk: bool) -> tuple[float, float]:
    """(microseconds, Redis commands) per analysed call."""
    client.flushdb()
    before = commands(client)
    events = _events(failing)
    policy = AnalysisPolicy()
    match = RouteMatch("default", SINKS, StormPolicy(), RatioPolicy())
    desk = IncidentDesk(IncidentStore(client), lambda alert: [match], KINDS.__getitem__)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for n in range(calls):
        call = Call(call_sid=f"CA{n:032x}", account_sid="AC" + "2" * 32,
                    status="completed", direction="outbound-api", from_="client:a", to="client:b",
                    duration_s=42)
        analyze_step(AnalysisRequest(call), fetch=lambda sid: events, policy=policy,
                     route=lambda alert: SINKS, now=now, incidents=desk if with_desk else None)
    elapsed = time.perf_counter() - started
    return elapsed / calls * 1e6, (commands(client) - before - 1) / calls


def slack_rate(alerts: int = 12) -> None:
    """Slack messages a second one real worker achieves for ``alerts`` scheduled at once."""
    import itertools
    import os
    import subprocess

    from devtools.sample_alerts import sample_alert
    from devtools.standins import SlackStandIn
    from workers.queues import schedule_delivery

    with RedisServer() as server, SlackStandIn(min_interval_s=1.0) as slack:
        env = {**os.environ, "REDIS_URL": server.url, "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
               "TWILIO_AUTH_TOKEN": "x" * 32, "SLACK_WEBHOOK_URL": slack.url, "LOG_FORMAT": "json",
               "PYTHONPATH": str(ROOT), "CALLWATCH_CONFIG": '{"storm": false}'}
        client = redis_lib.Redis.from_url(server.url)
        worker = subprocess.Popen([sys.executable, "-m", "workers.worker", "--name", "bench"],
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            for n in range(alerts):
                schedule_delivery(client, "slack", sample_alert(call_sid=f"CA{n:032x}").to_envelope())
            deadline = time.time() + 30 + 3 * alerts
            while len(slack.accepted()) < alerts and time.time() < deadline:
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(30)
            client.close()
        times = sorted(m.received_at for m in slack.accepted())
        gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        print(f"slack: {len(times)}/{alerts} accepted, {rate:.2f} messages/s, gaps {gaps}, "
              f"429s {sum(1 for m in slack.messages if m.status == 429)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slack-rate", action="store_true",
                        help="instead: the Slack messages/s one worker achieves (storm off)")
    args = parser.parse_args(argv)
    if args.slack_rate:
        slack_rate()
        return 0
    # The step's log lines are not what is measured: drop them below warning.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"bench/incidents.py --calls {args.calls} --rounds {args.rounds}")
    with RedisServer() as server:
        client = redis_lib.Redis.from_url(server.url)
        rows = []
        for failing in (False, True):
            without, with_, ops = [], [], []
            for _ in range(args.rounds):
                without.append(run(client, args.calls, failing=failing, with_desk=False)[0])
                micros, per_call = run(client, args.calls, failing=failing, with_desk=True)
                with_.append(micros)
                ops.append(per_call)
            a, b = statistics.median(without), statistics.median(with_)
            rows.append(("alert" if failing else "no alert", a, b, b / a, statistics.median(ops)))
        client.close()
    print("| call | µs per call without | µs per call with | ratio | Redis commands per call |")
    print("|---|---:|---:|---:|---:|")
    for name, a, b, ratio, per_call in rows:
        print(f"| {name} | {a:.0f} | {b:.0f} | {ratio:.2f} | {per_call:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
