"""Benchmark: end-to-end latency from status callback to delivered alert, at a fixed rate.

Run from the project root::

    .venv/bin/python bench/e2e.py [--rate 50] [--seconds 60] [--workers 2] [--delay 2] [--markdown]

The whole system as deployed, on loopback: gunicorn serving the web app (the
Procfile's command, ``bench.ingest.gunicorn``), ``--workers`` processes of
``python -m workers.worker`` (forking RQ workers with the scheduler and the intake
mover), a private Redis, the Twilio simulator (``sdk-error`` calls, so every call
alerts) and two sinks as an operator would configure them with no routing file:
a Standard Webhooks receiver that verifies every signature (it gets every call's
``call.alert`` plus the storm's ``incident.*`` events) and the Slack stand-in, paced
by callwatch at one message a second (it gets the first alerts one by one, then the
storm's incident messages: storms are on, as by default). Webhook and Slack latency
are reported apart; worker CPU is divided by the alerting calls (every call alerts).

Every callback is built and signed before the clock starts and every CallSid is
registered in the simulator beforehand. ``bench.loadgen.open_loop`` sends them at
``--rate`` for ``--seconds`` whatever the system does. A call's latency runs from
its callback's *intended* send time to the receiver's first verified delivery,
minus the configured ``ANALYSIS_DELAY_SECONDS``. The intended send times are the
open loop's (request ``i`` is due ``i / rate`` after its start); the start is
recovered from the web log's ``analysis_scheduled`` times (earliest admission
minus its offset), so it is late by at most the fastest callback's latency
(~1 ms). The components of the latency come from the processes' JSON logs:
callback admitted (web), moved into RQ (``analysis_enqueued``), analysis started,
alert created, delivered. Every second a sampler records the intake's overdue
calls, ``LLEN`` of the analysis and delivery queues, deliveries so far and the
CPU of the worker and web process groups, so a run that does not keep up shows
where its backlog grows. The run waits at most ``--drain`` seconds after the last
send for the last alerts; alerts missing then are reported, not waited for.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import functools
import json
import math
import os
import platform
import re
import resource
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.analyze import worker_env  # noqa: E402
from bench.ingest import (  # noqa: E402
    ACCOUNT_SID,
    APPS,
    AUTH_TOKEN,
    group_cpu_s,
    gunicorn,
    redis_cpu_s,
    signed_callbacks,
)
from bench.loadgen import LatencyResult, open_loop  # noqa: E402
from devtools.process_groups import stop_groups  # noqa: E402
from service.intake import INTAKE_KEY  # noqa: E402

#: Longest the workers may take to register with Redis.
START_TIMEOUT_S = 30.0
#: Warm-up calls (unmeasured): fill the bytecode cache, open the connections.
WARMUP_CALLS = 6
SAMPLE_EVERY_S = 1.0
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
INCIDENT_TEXT = re.compile(r"callwatch Incident (opened|updated|resolved)")
#: Components read from the logs, in the order a call passes them.
STAGES = ("analysis_scheduled", "analysis_enqueued", "analysis_started", "alert_created",
          "alert_delivered")


@dataclass(frozen=True)
class Sample:
    """One second of the run: backlog and cumulative figures."""

    t: float            # seconds since the first intended send
    overdue: int        # calls due in the intake but not yet moved into RQ
    analysis: int       # LLEN rq:queue:analysis
    delivery: int       # LLEN rq:queue:delivery
    delivered: int      # measured calls with a delivery so far
    worker_cpu_s: float
    web_cpu_s: float


def machine() -> str:
    """CPUs, load, OS and Python: the context every figure needs."""
    load = os.getloadavg()
    return (f"nproc {len(os.sched_getaffinity(0))} ({os.cpu_count()} CPUs), load average "
            f"{load[0]:.2f} at start, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@contextmanager
def workers(count: int, env: dict[str, str], log_dir: Path, client: redis.Redis,
            extra: Sequence[str] = ()) -> Iterator[list[int]]:
    """``count`` running ``python -m workers.worker`` processes; their process groups."""
    from rq import Worker
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(count):
            with (log_dir / f"worker-{i}.log").open("wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "workers.worker", "--name", f"bench-{i}", *extra],
                    cwd=ROOT,
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + START_TIMEOUT_S
        while Worker.count(connection=client) < count:
            dead = [p.pid for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start (exited: {dead}); see {log_dir}")
            time.sleep(0.1)
        yield [p.pid for p in procs]
    finally:
        stop_groups(procs, timeout_s=30)


class Sampler:
    """A thread that records a ``Sample`` every second until stopped."""

    def __init__(self, client: redis.Redis, receiver: Any, sids: frozenset[str],
                 worker_pgids: Sequence[int], web_pgid: int) -> None:
        self.samples: list[Sample] = []
        self._client, self._receiver, self._sids = client, receiver, sids
        self._worker_pgids, self._web_pgid = worker_pgids, web_pgid
        self._stop = threading.Event()
        self.origin = time.time()
        self._thread = threading.Thread(target=self._run, name="e2e-sampler", daemon=True)

    def start(self, origin: float) -> Sampler:
        self.origin = origin
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            now = time.time()
            pipe = self._client.pipeline()
            pipe.zcount(INTAKE_KEY, "-inf", repr(now))
            pipe.llen("rq:queue:analysis")
            pipe.llen("rq:queue:delivery")
            overdue, analysis, delivery = pipe.execute()
            self.samples.append(Sample(
                now - self.origin, int(overdue), int(analysis), int(delivery),
                len(first_deliveries(self._receiver, self._sids)),
                sum(group_cpu_s(p) or 0.0 for p in self._worker_pgids),
                group_cpu_s(self._web_pgid) or 0.0))


def alert_sid(body: Any) -> str | None:
    """The CallSid of a ``call.alert`` webhook body; None for an incident event or junk."""
    if not isinstance(body, dict) or body.get("type") != "call.alert":
        return None
    return str(body["data"]["call"]["call_sid"])


def first_deliveries(receiver: Any, sids: frozenset[str]) -> dict[str, float]:
    """CallSid -> received_at of its first verified ``call.alert``, for the measured calls."""
    out: dict[str, float] = {}
    for d in receiver.accepted():
        sid = alert_sid(d.body)
        if sid in sids and sid not in out:
            out[sid] = d.received_at
    return out


def duplicates(receiver: Any, sids: frozenset[str]) -> int:
    """Accepted ``call.alert`` deliveries beyond the first for the measured calls (should be 0),
    plus incident events accepted twice under one ``webhook-id``."""
    measured = [s for s in (alert_sid(d.body) for d in receiver.accepted()) if s in sids]
    events = [d.webhook_id for d in receiver.accepted() if alert_sid(d.body) is None]
    return len(measured) - len(set(measured)) + len(events) - len(set(events))


def incident_events(receiver: Any) -> int:
    """Distinct incident events (``incident.*``) the webhook accepted."""
    return len({d.webhook_id for d in receiver.accepted() if alert_sid(d.body) is None})


@dataclass(frozen=True)
class SlackFigures:
    """What Slack showed: per-call alerts by CallSid, incident messages, refusals."""

    alerts: dict[str, list[float]]
    incidents: list[tuple[str, float]]
    answered_429: int

    @classmethod
    def read(cls, slack: Any, sids: frozenset[str]) -> SlackFigures:
        alerts: dict[str, list[float]] = {}
        incidents: list[tuple[str, float]] = []
        for message in slack.accepted():
            text = str(message.payload.get("text", "")) if isinstance(message.payload, dict) else ""
            incident = INCIDENT_TEXT.search(text)
            found = CALL_SID.search(text)
            if incident:
                incidents.append((incident.group(1), message.received_at))
            elif found and found.group() in sids:
                alerts.setdefault(found.group(), []).append(message.received_at)
        return cls(alerts, incidents, sum(1 for m in slack.messages if m.status == 429))


def log_times(log_dir: Path, sids: frozenset[str]) -> dict[str, dict[str, float]]:
    """Stage -> CallSid -> unix time of its first log line, from every process's log."""
    out: dict[str, dict[str, float]] = {stage: {} for stage in STAGES}
    for path in log_dir.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if '"event"' not in line or "call_sid" not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            stage, sid = record.get("event"), record.get("call_sid")
            if stage in out and sid in sids and sid not in out[stage]:
                out[stage][sid] = datetime.fromisoformat(record["timestamp"]).timestamp()
    return out


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max by nearest rank (NaN when empty)."""
    if not values:
        return {k: float("nan") for k in ("p50", "p90", "p99", "max")}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(1, min(len(ordered), math.ceil(q * len(ordered)))) - 1]
    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": ordered[-1]}


def slope(samples: Sequence[Sample], start: float, end: float) -> float:
    """Growth per second of the backlog (overdue + both queues) between two times."""
    points = [(s.t, s.overdue + s.analysis + s.delivery) for s in samples if start <= s.t <= end]
    if len(points) < 3:
        return float("nan")
    return statistics.linear_regression([p[0] for p in points], [p[1] for p in points]).slope


@dataclass(frozen=True)
class Report:
    """Everything one run measured."""

    args: argparse.Namespace
    sids: tuple[str, ...]
    sent: LatencyResult
    origin: float
    delivered: dict[str, float]
    dupes: int
    events: int
    slack: SlackFigures
    stages: dict[str, dict[str, float]]
    samples: list[Sample]
    worker_cpu_s: float
    web_cpu_s: float
    redis_cpu_s: float
    bench_cpu_s: float

    def due(self, sid: str) -> float:
        """When a call's analysis was due: its intended send time plus the delay."""
        return self.origin + self._index[sid] / self.args.rate + self.args.delay

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        """Each measured CallSid's position in the sending order (built once per report)."""
        return {sid: i for i, sid in enumerate(self.sids)}

    def latencies(self) -> list[float]:
        """Per delivered call: webhook delivery - intended send - configured delay, seconds."""
        return [at - self.due(sid) for sid, at in self.delivered.items()]

    def slack_latencies(self) -> list[float]:
        """Per call shown one by one in Slack: its first message - intended send - delay."""
        return [min(at) - self.due(sid) for sid, at in self.slack.alerts.items()]

    def slack_opened_s(self) -> float:
        """The incident's ``opened`` in Slack, from when the first measured call was due
        (NaN when none opened)."""
        opened = [at for event, at in self.slack.incidents if event == "opened"]
        return min(opened) - self.due(self.sids[0]) if opened else float("nan")

    def component(self, first: str, second: str) -> list[float]:
        a, b = self.stages[first], self.stages[second]
        return [b[s] - a[s] for s in a if s in b]


def summary(r: Report) -> list[str]:
    """The report, as markdown (headings and tables)."""
    a = r.args
    lat = percentiles(r.latencies())
    slack = percentiles(r.slack_latencies())
    slack_dupes = sum(len(v) - 1 for v in r.slack.alerts.values())
    kinds = {e: sum(1 for k, _ in r.slack.incidents if k == e)
             for e in ("opened", "updated", "resolved")}
    n, got = len(r.sids), len(r.delivered)
    times = sorted(r.delivered.values())
    window = times[-1] - times[0] if len(times) > 1 else 0.0
    send_end = n / a.rate
    grow = slope(r.samples, a.delay + 5, send_end)
    kept = got == n and (grow != grow or grow < 0.02 * a.rate)  # NaN slope: too short to say
    peak = max(r.samples, key=lambda s: s.overdue + s.analysis + s.delivery, default=None)
    lines = [
        f"Machine: {machine()}  ",
        f"Load: {n:,} signed `completed` callbacks (simulator scenario `sdk-error`), open loop "
        f"at {a.rate:g}/s for {a.seconds:g} s; {a.workers} workers (`python -m workers.worker"
        f"{' --simple' if a.simple else ' --fork' if a.fork else ''}`), "
        f"gunicorn as the Procfile runs it; `ANALYSIS_DELAY_SECONDS={a.delay}`; a webhook sink and "
        "a paced Slack sink, storms on (the defaults).",
        "",
        "| figure | value |", "|---|---:|",
        f"| callbacks accepted / sent | {len(r.sent.accepted_keys):,} / {n:,} |",
        f"| callback HTTP p50 / p99, ms | {r.sent.p50 * 1000:.1f} / {r.sent.p99 * 1000:.1f} |",
        f"| webhook: alerts delivered / expected | {got:,} / {n:,} |",
        f"| webhook: duplicate deliveries | {r.dupes} |",
        f"| webhook: incident events | {r.events} |",
        f"| webhook beyond the delay, p50 / p90 / p99 / max, s | {lat['p50']:.2f} / "
        f"{lat['p90']:.2f} / {lat['p99']:.2f} / {lat['max']:.2f} |",
        f"| Slack: alerts one by one / incident messages (opened, updated, resolved) | "
        f"{len(r.slack.alerts)} / {kinds['opened']}, {kinds['updated']}, {kinds['resolved']} |",
        f"| Slack: duplicates / 429 answers | {slack_dupes} / {r.slack.answered_429} |",
        f"| Slack alerts beyond the delay, p50 / max, s | {slack['p50']:.2f} / "
        f"{slack['max']:.2f} |",
        f"| Slack `opened` after the first call was due, s | {r.slack_opened_s():.2f} |",
        f"| deliveries per second (first to last delivery) | "
        f"{(got - 1) / window if window else float('nan'):.1f} |",
        f"| backlog growth while sending (overdue + queued, per s) | {grow:+.2f} |",
        "| peak backlog (overdue / analysis / delivery) at t | "
        + (f"{peak.overdue} / {peak.analysis} / {peak.delivery} at {peak.t:.0f} s |"
           if peak else "- |"),
        f"| kept up | {'yes' if kept else 'no'} |",
        f"| CPU ms per alerting call: workers / web / Redis / simulator+receivers | "
        f"{_per(r.worker_cpu_s, n)} / {_per(r.web_cpu_s, n)} / {_per(r.redis_cpu_s, n)} / "
        f"{_per(r.bench_cpu_s, n)} |",
        "", "| component (from the logs) | p50 s | p90 s | p99 s | max s |",
        "|---|---:|---:|---:|---:|",
    ]
    names = {("analysis_scheduled", "analysis_enqueued"): "admitted -> moved into RQ "
             "(delay + mover)", ("analysis_enqueued", "analysis_started"): "moved -> analysis "
             "started (queue wait)", ("analysis_started", "alert_created"): "analysis (fetch, "
             "classify, enqueue delivery)", ("alert_created", "alert_delivered"): "alert created "
             "-> delivered (queue wait + send)"}
    for (first, second), name in names.items():
        p = percentiles(r.component(first, second))
        lines.append(f"| {name} | {p['p50']:.2f} | {p['p90']:.2f} | {p['p99']:.2f} | "
                     f"{p['max']:.2f} |")
    lines += ["", "| t s | overdue | analysis queue | delivery queue | delivered | "
              "worker CPU % | web CPU % |", "|---:|---:|---:|---:|---:|---:|---:|"]
    prev: Sample | None = None
    for s in r.samples:
        if prev is None or s.t - prev.t >= a.every - 0.01 or s is r.samples[-1]:
            dt = s.t - prev.t if prev else s.t
            wcpu = (s.worker_cpu_s - prev.worker_cpu_s) / dt * 100 if prev and dt else 0.0
            gcpu = (s.web_cpu_s - prev.web_cpu_s) / dt * 100 if prev and dt else 0.0
            lines.append(f"| {s.t:.0f} | {s.overdue} | {s.analysis} | {s.delivery} | "
                         f"{s.delivered:,} | {wcpu:.0f} | {gcpu:.0f} |")
            prev = s
    return lines


def _per(cpu_s: float, count: int) -> str:
    return f"{cpu_s / count * 1000:.1f}" if count else "-"


def run(args: argparse.Namespace, log_dir: Path) -> Report:
    from devtools.redis_server import RedisServer
    from devtools.simulator.server import SimulatorServer
    from devtools.standins import SlackStandIn, WebhookReceiver

    secret = webhook_secret()
    # bench.ingest's gunicorn passes the shell's environment through: the delay goes there.
    os.environ["ANALYSIS_DELAY_SECONDS"] = str(args.delay)
    with RedisServer() as server, \
            SimulatorServer(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as sim, \
            WebhookReceiver(secret) as receiver, SlackStandIn() as slack, \
            gunicorn(APPS["callwatch"], server.url, log_dir) as web:
        client = redis.Redis.from_url(server.url)
        env = worker_env(server.url, str(log_dir / "pyc"), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                         TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_INSIGHTS_BASE_URL=sim.url,
                         ALERT_WEBHOOK_URLS=receiver.url, ALERT_WEBHOOK_SECRET=secret,
                         SLACK_WEBHOOK_URL=slack.url,
                         ANALYSIS_DELAY_SECONDS=str(args.delay))
        base = f"http://{web.target.host}:{web.target.port}"
        count = int(args.rate * args.seconds)
        warm = signed_callbacks(base, WARMUP_CALLS, 1)
        calls = signed_callbacks(base, count, 1 + WARMUP_CALLS)
        for request in (*warm, *calls):
            sim.add_call("sdk-error", call_sid=request.key)
        sids = frozenset(r.key for r in calls)
        extra = ["--simple"] if args.simple else ["--fork"] if args.fork else []
        with workers(args.workers, env, log_dir, client, extra) as pgids:
            print(f"warming up with {WARMUP_CALLS} calls", flush=True)
            open_loop(web.target, warm, rate=5.0)
            _wait(receiver, frozenset(r.key for r in warm), args.delay + 60)
            # Slack's one message a second must have sent the warm-up alerts too, or the
            # first measured Slack alerts would wait behind them.
            deadline = time.monotonic() + 30
            while len(slack.accepted()) < WARMUP_CALLS and time.monotonic() < deadline:
                time.sleep(0.2)
            if args.idle:
                print_idle_cpu(pgids, args.idle)
            print(f"sending {count:,} callbacks at {args.rate:g}/s", flush=True)
            sampler = Sampler(client, receiver, sids, pgids, web.pgid)
            before = _cpu(pgids, web.pgid, client)
            commands_before = client.info("commandstats")
            sampler.start(time.time())
            sent = open_loop(web.target, calls, rate=args.rate, threads=args.threads)
            print(f"sent; {len(sent.accepted_keys):,} accepted, waiting up to {args.drain:g} s "
                  "for the alerts", flush=True)
            _wait(receiver, sids, args.drain)
            sampler.stop()
            after = _cpu(pgids, web.pgid, client)
            if args.commandstats:
                print_commandstats(commands_before, client.info("commandstats"), count)
        stages = log_times(log_dir, sids)
        admitted = stages["analysis_scheduled"]
        index = {r.key: i for i, r in enumerate(calls)}
        origin = min((t - index[s] / args.rate for s, t in admitted.items()), default=0.0)
        shift = sampler.origin - origin  # sampler times, re-based on the first intended send
        samples = [dataclasses.replace(s, t=s.t + shift) for s in sampler.samples]
        report = Report(args, tuple(r.key for r in calls), sent, origin,
                        first_deliveries(receiver, sids), duplicates(receiver, sids),
                        incident_events(receiver), SlackFigures.read(slack, sids), stages,
                        samples, *(b - a for a, b in zip(before, after, strict=True)))
        client.close()
    return report


def print_idle_cpu(pgids: Sequence[int], seconds: float) -> None:
    """The workers' CPU while nothing is due: what they cost a second whatever the load."""
    time.sleep(2.0)  # the warm-up's last jobs and log lines
    before = sum(group_cpu_s(p) or 0.0 for p in pgids)
    time.sleep(seconds)
    spent = sum(group_cpu_s(p) or 0.0 for p in pgids) - before
    print(f"idle workers: {spent / seconds * 1000:.1f} CPU ms a second "
          f"({len(pgids)} workers, {seconds:g} s)", flush=True)


def print_commandstats(before: dict[str, Any], after: dict[str, Any], calls: int) -> None:
    """Redis commands per alerting call over the measured run, most frequent first (every
    process's: web, workers and the bench's own sampler, which is about 4 a second)."""
    counts = {name.removeprefix("cmdstat_"): stats["calls"] - before.get(name, {}).get("calls", 0)
              for name, stats in after.items()}
    total = sum(counts.values())
    print(f"Redis commands per alerting call: {total / calls:.1f}")
    for name, n in sorted(counts.items(), key=lambda item: -item[1]):
        if n:
            print(f"  {name:<24} {n / calls:6.2f}")


def _cpu(pgids: Sequence[int], web_pgid: int, client: redis.Redis) -> tuple[float, ...]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (sum(group_cpu_s(p) or 0.0 for p in pgids), group_cpu_s(web_pgid) or 0.0,
            redis_cpu_s(client), usage.ru_utime + usage.ru_stime)


def _wait(receiver: Any, sids: frozenset[str], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while len(first_deliveries(receiver, sids)) < len(sids) and time.monotonic() < deadline:
        time.sleep(0.5)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="callbacks per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--delay", type=int, default=2, help="ANALYSIS_DELAY_SECONDS")
    parser.add_argument("--simple", action="store_true",
                        help="workers run jobs in their own process (--simple; the default now)")
    parser.add_argument("--fork", action="store_true",
                        help="workers fork a work horse per job (--fork)")
    parser.add_argument("--drain", type=float, default=120.0,
                        help="longest wait after the last send for the last alerts")
    parser.add_argument("--threads", type=int, default=8, help="load generator connections")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between table rows")
    parser.add_argument("--markdown", action="store_true", help="print the report as markdown")
    parser.add_argument("--idle", type=float, default=0.0, metavar="S",
                        help="before sending, measure the idle workers' CPU over S seconds")
    parser.add_argument("--commandstats", action="store_true",
                        help="also print Redis commands per alerting call (INFO commandstats)")
    args = parser.parse_args(argv)
    if min(args.rate, args.seconds, args.workers, args.drain) <= 0 or args.delay < 1:
        parser.error("--rate, --seconds, --workers and --drain must be positive, --delay >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from bench.analyze import exit_on_sigterm

    args = parse_args(argv)
    exit_on_sigterm()
    command = "python bench/e2e.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="callwatch-e2e-") as logs:
        report = run(args, Path(logs))
    lines = summary(report)
    text = "\n".join(lines)
    if args.markdown:
        text = f"Command: `{command}`  \n" + text
    print("\n" + text)
    ok = len(report.delivered) == len(report.sids) and report.dupes == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
