"""Benchmark: alerts delivered per second by one real worker process, against no-op jobs.

Run from the project root::

    .venv/bin/python bench/deliver.py [--rounds 3] [--modes fork,simple,preload] [--markdown]

Every round starts ``python -m workers.worker --burst`` (RQ's forking ``Worker``,
as the Procfile runs it) against a private Redis three times, on queues filled
beforehand: nothing (the worker's start-up cost), N no-op jobs on the ``delivery``
queue (RQ's own cost per job) and N alerts, each one delivery job
(``schedule_delivery``) to a loopback webhook receiver that verifies every
Standard Webhooks signature and never paces. A rate is jobs over the window from
the first job's start to the last one's end as RQ recorded them; the ratio to the
no-op rate is taken within the round and the report gives the median over
rounds. Every alert must reach the receiver exactly once, verified.

Then, per round, Slack: M alerts at once to the Slack stand-in, which answers 429
to two messages closer than 1 s, through a long-running worker (not ``--burst``:
paced deliveries are rescheduled, and RQ's scheduler must move them back to the
queue), stopped with SIGTERM once all M are in or a deadline passes. The achieved
rate is (M - 1) over the time from the first accepted message to the last,
against the 1/s pace; the stand-in's 429s count messages the pace let through too
early. ``--modes`` as in ``bench/analyze.py``.
"""

from __future__ import annotations

import argparse
import base64
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.analyze import (  # noqa: E402
    WorkerRun,
    check,
    enqueue_noops,
    exit_on_sigterm,
    machine,
    per_job_cpu_ms,
    run_worker,
    worker_command,
    worker_env,
)
from bench.classify import synthetic_call  # noqa: E402
from devtools.process_groups import stop_groups  # noqa: E402
from devtools.redis_server import RedisServer  # noqa: E402
from devtools.standins import SlackStandIn, WebhookReceiver  # noqa: E402
from service.analysis.classifier import AlertPolicy, build_alert  # noqa: E402
from service.calls import Call  # noqa: E402
from service.delivery.sinks.slack import SLACK_SINK_ID  # noqa: E402
from service.delivery.sinks.webhook import webhook_sink_names  # noqa: E402
from service.insights.events import parse_events  # noqa: E402
from workers.queues import DELIVERY_QUEUE, delivery_job_id, schedule_delivery  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"  # a made-up token for a private benchmark
SECRET = "whsec_" + base64.b64encode(b"callwatch-bench-signing-key-0123").decode()
SLACK_PACE_S = 1.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SlackRun:
    """M alerts through the paced Slack sink: when each was accepted, and the 429s."""

    alerts: int
    accepted_at: tuple[float, ...]
    rate_limited: int
    wall_s: float

    @property
    def rate(self) -> float:
        """Accepted messages per second, first to last."""
        times = self.accepted_at
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return (len(times) - 1) / span if span > 0 else 0.0

    @property
    def min_gap_s(self) -> float:
        gaps = [b - a for a, b in zip(self.accepted_at, self.accepted_at[1:], strict=False)]
        return min(gaps) if gaps else 0.0


def envelopes(count: int, first: int) -> list[dict[str, Any]]:
    """``count`` alert envelopes for distinct CallSids, from a synthetic 50-event call."""
    events = parse_events(synthetic_call(50))
    now = datetime.now(UTC)
    out = []
    for n in range(first, first + count):
        call = Call(f"CA{n:032x}", ACCOUNT_SID, "completed", "outbound-api", "client:alice",
                    "+14155550123", duration_s=42)
        alert = build_alert(call, events, AlertPolicy(), now=now)
        assert alert is not None
        out.append(alert.to_envelope())
    return out


class DeliveryBench:
    """Rounds of worker runs against one private Redis and the two stand-ins."""

    def __init__(self, args: argparse.Namespace, redis_url: str, hooks: WebhookReceiver,
                 slack: SlackStandIn, log_path: Path, pyc_dir: str | None) -> None:
        self.args = args
        self.redis_url = redis_url
        self.hooks = hooks
        self.slack = slack
        self.log_path = log_path
        self.client = redis.Redis.from_url(redis_url)
        base = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
        self.hooks_env = worker_env(redis_url, pyc_dir, **base, ALERT_WEBHOOK_URLS=hooks.url,
                                    ALERT_WEBHOOK_SECRET=SECRET)
        self.slack_env = worker_env(redis_url, pyc_dir, **base, SLACK_WEBHOOK_URL=slack.url)
        self._serial = 1
        self.problems: list[str] = []

    def _envelopes(self, count: int) -> list[dict[str, Any]]:
        first, self._serial = self._serial, self._serial + count
        return envelopes(count, first)

    def _problem(self, problem: str | None) -> None:
        if problem:
            self.problems.append(problem)
            print(f"      ! {problem}", flush=True)

    def webhooks(self, mode: str, count: int | None = None) -> WorkerRun:
        """N alerts to the webhook receiver by a burst worker; each must arrive once."""
        sink_id = webhook_sink_names([self.hooks.url])[0]
        batch = self._envelopes(count or self.args.alerts)
        ids = []
        for envelope in batch:
            assert schedule_delivery(self.client, sink_id, envelope)
            ids.append(delivery_job_id(sink_id, envelope["data"]["alert_id"]))
        run = run_worker(self.hooks_env, self.redis_url, ids, self.log_path, mode=mode)
        self._problem(check(run, "webhook", {"delivered"}))
        wanted = {e["data"]["alert_id"] for e in batch}
        got = [d.webhook_id for d in self.hooks.accepted() if d.webhook_id in wanted]
        if len(got) != len(wanted) or set(got) != wanted:
            self._problem(f"webhook: {len(got)} verified deliveries of {len(wanted)} alerts "
                          f"({len(set(got))} distinct)")
        return run

    def warm_up(self, mode: str) -> None:
        """One unmeasured no-op and delivery, so the bytecode cache holds every module."""
        self.client.flushdb()
        enqueue_noops(self.client, 1, f"warm{self._serial}", DELIVERY_QUEUE)
        self._serial += 1
        self.webhooks(mode, count=1)

    def round(self, index: int, mode: str) -> dict[str, WorkerRun]:
        """An empty run, then no-op and webhook runs (order alternating by round)."""
        self.client.flushdb()
        out = {"empty": run_worker(self.hooks_env, self.redis_url, [], self.log_path, mode=mode)}
        for label in (("no-op", "webhook") if index % 2 == 0 else ("webhook", "no-op")):
            self.client.flushdb()
            if label == "no-op":
                ids = enqueue_noops(self.client, self.args.noops, f"d{self._serial}",
                                    DELIVERY_QUEUE)
                self._serial += 1
                out[label] = run_worker(self.hooks_env, self.redis_url, ids, self.log_path,
                                        mode=mode)
                self._problem(check(out[label], "no-op", {"None"}))
            else:
                out[label] = self.webhooks(mode)
        return out

    def slack_run(self, mode: str) -> SlackRun:
        """M alerts to the paced Slack stand-in through a long-running worker."""
        self.client.flushdb()
        batch = self._envelopes(self.args.slack_alerts)
        wanted = {e["data"]["call"]["call_sid"] for e in batch}
        for envelope in batch:
            assert schedule_delivery(self.client, SLACK_SINK_ID, envelope)
        deadline_s = self.args.slack_alerts * 5 * SLACK_PACE_S + 30
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(worker_command(mode, burst=False), cwd=ROOT,
                                    env=self.slack_env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            while len(self._slack_accepted(wanted)) < len(wanted):
                if proc.poll() is not None or time.monotonic() - started > deadline_s:
                    break
                time.sleep(0.05)
        finally:
            _stop(proc)
        wall = time.monotonic() - started
        accepted = sorted(m.received_at for m in self._slack_accepted(wanted))
        limited = sum(1 for m in self.slack.messages if m.status == 429
                      and _call_sid(m.payload) in wanted)
        if len(accepted) != len(wanted):
            self._problem(f"slack: {len(accepted)} of {len(wanted)} alerts accepted "
                          f"within {deadline_s:g} s")
        return SlackRun(len(wanted), tuple(accepted), limited, wall)

    def _slack_accepted(self, wanted: set[str]) -> list[Any]:
        return [m for m in self.slack.accepted() if _call_sid(m.payload) in wanted]


def _call_sid(payload: Any) -> str | None:
    """The CallSid named in a Slack message's fallback text."""
    text = payload.get("text", "") if isinstance(payload, dict) else ""
    return next((word.strip(".,:()") for word in text.split() if word.startswith("CA")), None)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (RQ's warm shutdown) to the worker's group, SIGKILL if it lingers."""
    stop_groups([proc], timeout_s=STOP_TIMEOUT_S)


def summarise(rounds: list[dict[str, WorkerRun]]) -> dict[str, dict[str, float]]:
    out = {}
    for label in ("no-op", "webhook"):
        out[label] = {
            "rate": statistics.median(r[label].rate for r in rounds),
            "ratio": statistics.median(r[label].rate / r["no-op"].rate for r in rounds),
            "cpu_ms": statistics.median(per_job_cpu_ms(r[label], r["empty"]) for r in rounds),
            "jobs": rounds[0][label].jobs,
        }
    return out


def markdown(summaries: Mapping[str, Mapping[str, Mapping[str, float]]],
             slack: Mapping[str, list[SlackRun]], rounds: int, command: str) -> str:
    lines = [f"Command: `{command}`  ", f"Machine: {machine()}  ",
             f"Median of {rounds} rounds; each ratio is taken within its round.", "",
             "| worker | job | jobs per run | jobs/s | ratio to no-op | CPU ms per job |",
             "|---|---|---:|---:|---:|---:|"]
    for mode, summary in summaries.items():
        for label, fig in summary.items():
            lines.append(f"| {mode} | {label} | {fig['jobs']:.0f} | {fig['rate']:,.1f} | "
                         f"{fig['ratio']:.3f} | {fig['cpu_ms']:.1f} |")
    lines += ["", f"| worker | Slack alerts per run | achieved msg/s (median) | share of the "
              f"{1 / SLACK_PACE_S:g}/s pace | shortest gap s | 429s (all runs) |",
              "|---|---:|---:|---:|---:|---:|"]
    for mode, runs in slack.items():
        rate = statistics.median(r.rate for r in runs)
        lines.append(f"| {mode} | {runs[0].alerts} | {rate:.2f} | {rate * SLACK_PACE_S:.2f} | "
                     f"{min(r.min_gap_s for r in runs):.2f} | "
                     f"{sum(r.rate_limited for r in runs)} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--noops", type=int, default=200, help="no-op jobs per run")
    parser.add_argument("--alerts", type=int, default=200, help="webhook alerts per run")
    parser.add_argument("--slack-alerts", type=int, default=10, help="Slack alerts per run")
    parser.add_argument("--modes", default="fork",
                        help="comma-separated worker modes: fork, simple, preload "
                             "(see bench/analyze.py)")
    parser.add_argument("--no-pyc", action="store_true",
                        help="no bytecode cache: every work horse compiles what it imports")
    parser.add_argument("--markdown", action="store_true", help="also print a README block")
    args = parser.parse_args(argv)
    if min(args.rounds, args.noops, args.alerts) < 1 or args.slack_alerts < 2:
        parser.error("--rounds, --noops and --alerts must be positive, --slack-alerts >= 2")
    args.modes = args.modes.split(",")
    if not set(args.modes) <= {"fork", "simple", "preload"}:
        parser.error("--modes takes fork, simple and preload")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    command = "python bench/deliver.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(machine())
    print(f"{'round':>5} {'worker':>7} {'job':>8} {'jobs':>5} {'window s':>8} {'jobs/s':>8} "
          f"{'CPU ms/job':>10}", flush=True)
    summaries: dict[str, dict[str, dict[str, float]]] = {}
    slack_runs: dict[str, list[SlackRun]] = {}
    with RedisServer() as server, WebhookReceiver(SECRET) as hooks, \
            SlackStandIn(min_interval_s=SLACK_PACE_S) as slack, \
            tempfile.TemporaryDirectory(prefix="callwatch-bench-") as logs:
        pyc_dir = None if args.no_pyc else str(Path(logs) / "pyc")
        bench = DeliveryBench(args, server.url, hooks, slack, Path(logs) / "worker.log", pyc_dir)
        for mode in args.modes:
            bench.warm_up(mode)
            rounds, slack_runs[mode] = [], []
            for i in range(args.rounds):
                result = bench.round(i, mode)
                for label in ("no-op", "webhook"):
                    run = result[label]
                    print(f"{i + 1:>5} {mode:>7} {label:>8} {run.jobs:>5} {run.window_s:>8.2f} "
                          f"{run.rate:>8.1f} {per_job_cpu_ms(run, result['empty']):>10.1f}",
                          flush=True)
                rounds.append(result)
                paced = bench.slack_run(mode)
                slack_runs[mode].append(paced)
                print(f"{i + 1:>5} {mode:>7} {'slack':>8} {paced.alerts:>5} "
                      f"{paced.accepted_at[-1] - paced.accepted_at[0] if paced.accepted_at else 0:>8.2f} "
                      f"{paced.rate:>8.2f} {'':>10} 429s={paced.rate_limited}", flush=True)
            summaries[mode] = summarise(rounds)
        bench.client.close()
    for mode, summary in summaries.items():
        fig = summary["webhook"]
        rate = statistics.median(r.rate for r in slack_runs[mode])
        print(f"{mode}: webhook {fig['rate']:.1f} alerts/s, {fig['ratio']:.3f} of no-op "
              f"({summary['no-op']['rate']:.1f} jobs/s), {fig['cpu_ms']:.1f} CPU ms per alert; "
              f"Slack {rate:.2f} msg/s against {1 / SLACK_PACE_S:g}/s")
    if args.markdown:
        print("\n" + markdown(summaries, slack_runs, args.rounds, command))
    for problem in bench.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
