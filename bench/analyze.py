"""Benchmark: calls analysed per second by one real worker process, against no-op jobs.

Run from the project root::

    .venv/bin/python bench/analyze.py [--rounds 3] [--modes fork,simple,preload] [--markdown]

Every round starts ``python -m workers.worker --burst`` (RQ's forking ``Worker``,
as the Procfile runs it) against a private Redis and the Twilio simulator over
loopback HTTP, four times on queues filled beforehand: nothing (the worker's own
start-up cost), N no-op jobs on the ``analysis`` queue (RQ's cost per job:
dequeue, fork, bookkeeping), N typical 50-event calls and N 2,500-event calls
(``schedule_analysis(..., delay_s=0)``, distinct CallSids, no sink configured, so
an alert becomes one log-sink delivery job that runs after every analysis). A
rate is jobs over the window from the first job's start to the last one's end, as
RQ recorded them; each round's analysis/no-op ratio is taken within the round and
the report gives the median over rounds. ``--modes`` picks the worker: ``fork``
(``--fork``, RQ's forking worker), ``simple`` (jobs in the worker process, the
deployed default) and ``preload`` (the forking worker with ``workers.jobs``
imported first: how the fix was measured; ``workers/worker.py`` now does it itself,
so it equals ``fork``).

Then, once: the peak RSS of the worker and of its work horse while analysing one
10,000-event call (``/proc/<pid>/status`` VmHWM, polled every 5 ms; not
``ru_maxrss``, which Linux carries over from the benchmark process that forked
the worker before its exec), and the classifier's own CPU cost and events per
second (``bench/classify.py``'s synthetic calls and timing). Targets: a
2,500-event call classified in under 50 ms of CPU; the worker under 150 MB while
analysing a 10,000-event call.

This module is also the no-op job's module, and a forked work horse imports it
afresh for every job, so its top level imports only what the worker process has
already loaded; the simulator and the classifier are imported where used.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rq.job import Job  # noqa: E402
from rq.serializers import JSONSerializer  # noqa: E402

from workers.queues import ANALYSIS_QUEUE, analysis_job_id, queue  # noqa: E402

#: Environment variables of the contract a benchmark never inherits from the shell.
CONTRACT_PREFIXES = ("TWILIO_", "SLACK_", "ALERT_", "ANALYSIS_", "INSIGHTS_", "DELIVERY_",
                     "REDIS_", "LOG_", "PUBLIC_BASE_URL", "TRUSTED_PROXY_HOPS", "DYNO")
#: One burst run may take at most this long before it is stopped and reported.
RUN_TIMEOUT_S = 300.0
POLL_S = 0.005
CLASSIFY_TARGET_MS = 50.0
MEMORY_TARGET_MB = 150.0
WORKLOADS = {"typical (50 events)": 50, "large (2,500 events)": 2_500}
#: The forking worker with the jobs' module imported before it forks: how the fix to
#: every work horse importing ``workers.jobs`` afresh was measured (now built in).
PRELOAD = ("import runpy, sys; import workers.jobs; sys.argv[0] = 'workers.worker'; "
           "runpy.run_module('workers.worker', run_name='__main__', alter_sys=True)")


def noop() -> None:
    """The baseline job: nothing, so a run of them measures RQ's own cost per job."""


@dataclass(frozen=True)
class WorkerRun:
    """What one burst worker did: its jobs' window, CPU and peak memory."""

    jobs: int
    window_s: float
    wall_s: float
    cpu_s: float
    worker_hwm_mb: float
    horse_hwm_mb: float
    statuses: Mapping[str, int] = field(default_factory=dict)
    results: Mapping[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Jobs per second between the first job's start and the last job's end."""
        return self.jobs / self.window_s if self.window_s > 0 else 0.0


def worker_env(redis_url: str, pyc_dir: str | None, **settings: str) -> dict[str, str]:
    """The shell's environment without callwatch's variables, plus ``settings``.

    With ``pyc_dir`` the worker caches bytecode there, as the container image
    (compiled by pip) and a Heroku dyno do; without it every work horse compiles
    each module it imports from source, as a shell with PYTHONDONTWRITEBYTECODE does.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONTRACT_PREFIXES)}
    env.update({"REDIS_URL": redis_url, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}, **settings)
    if pyc_dir:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pyc_dir
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _status_kb(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def worker_command(mode: str, *, burst: bool = True) -> list[str]:
    """The worker's command line for ``fork``, ``simple`` or ``preload``."""
    flags = (["--burst"] if burst else []) + (["--simple"] if mode == "simple" else ["--fork"])
    if mode == "preload":
        return [sys.executable, "-c", PRELOAD, *flags]
    return [sys.executable, "-m", "workers.worker", *flags]


def run_worker(env: Mapping[str, str], redis_url: str, job_ids: Iterable[str], log_path: Path,
               *, mode: str = "fork", timeout_s: float = RUN_TIMEOUT_S) -> WorkerRun:
    """Run the burst worker until the queues are empty; its figures."""
    command = worker_command(mode)
    started = time.monotonic()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    worker_hwm = horse_hwm = 0
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            worker_hwm = max(worker_hwm, _status_kb(proc.pid, "VmHWM"))
            for child in _children(proc.pid):
                horse_hwm = max(horse_hwm, _status_kb(child, "VmHWM"))
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"worker still running after {timeout_s} s; see {log_path}")
            time.sleep(POLL_S)
    finally:
        if proc.returncode is None:  # interrupted or timed out: no worker outlives us
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"worker exited with {proc.returncode}:\n{tail}")
    ids = list(job_ids)
    client = redis.Redis.from_url(redis_url)
    jobs = [j for j in Job.fetch_many(ids, connection=client, serializer=JSONSerializer) if j]
    statuses: dict[str, int] = {}
    results: dict[str, int] = {}
    for job in jobs:
        state = job.get_status(refresh=False).value
        statuses[state] = statuses.get(state, 0) + 1
        result = str(job.return_value(refresh=True))
        results[result] = results.get(result, 0) + 1
    client.close()
    starts = [j.started_at for j in jobs if j.started_at]
    ends = [j.ended_at for j in jobs if j.ended_at]
    window = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    return WorkerRun(jobs=len(ids), window_s=window, wall_s=wall,
                     cpu_s=usage.ru_utime + usage.ru_stime, worker_hwm_mb=worker_hwm / 1024,
                     horse_hwm_mb=horse_hwm / 1024, statuses=statuses, results=results)


def enqueue_noops(client: redis.Redis, count: int, prefix: str, queue_name: str) -> list[str]:
    """``count`` no-op jobs on ``queue_name`` with the JSON serializer; their ids."""
    q = queue(queue_name, client)
    ids = [f"noop-{prefix}-{i}" for i in range(count)]
    for job_id in ids:
        q.enqueue("bench.analyze.noop", job_id=job_id, result_ttl=3600)
    return ids


def machine() -> str:
    """nproc, OS and Python: the context every figure needs."""
    return (f"nproc {len(os.sched_getaffinity(0))} ({os.cpu_count()} CPUs), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"rq {_version('rq')}")


def _version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


def check(run: WorkerRun, label: str, expected: set[str] | None = None) -> str | None:
    """A problem with a run (jobs not finished, unexpected results), or None."""
    if run.statuses.get("finished", 0) != run.jobs:
        return f"{label}: job states {dict(run.statuses)}, expected {run.jobs} finished"
    if expected is not None and not set(run.results) <= expected:
        return f"{label}: results {dict(run.results)}, expected only {sorted(expected)}"
    return None


class AnalysisBench:
    """Rounds of burst runs against one private Redis and one simulator."""

    def __init__(self, args: argparse.Namespace, redis_url: str, simulator: Any,
                 log_path: Path, pyc_dir: str | None) -> None:
        self.args = args
        self.redis_url = redis_url
        self.simulator = simulator
        self.log_path = log_path
        self.client = redis.Redis.from_url(redis_url)
        self.env = worker_env(
            redis_url, pyc_dir, TWILIO_ACCOUNT_SID=simulator.account_sid,
            TWILIO_AUTH_TOKEN=simulator.auth_token, TWILIO_INSIGHTS_BASE_URL=simulator.url,
            ANALYSIS_DELAY_SECONDS="0")
        self._serial = 0
        self.problems: list[str] = []

    def _calls(self, count: int, events: int) -> list[str]:
        """Register ``count`` many-events calls in the simulator; schedule their analysis."""
        from service.calls import Call
        from workers.queues import schedule_analysis
        ids = []
        for _ in range(count):
            self._serial += 1
            sid = f"CA{self._serial:032x}"
            self.simulator.add_call("many-events", call_sid=sid, count=events)
            call = Call(sid, self.simulator.account_sid, "completed", "outbound-api",
                        "client:alice", "+14155550123", duration_s=600)
            assert schedule_analysis(self.client, call.to_json(), delay_s=0)
            ids.append(analysis_job_id(sid))
        return ids

    def run(self, label: str, job_ids: list[str], *, mode: str,
            expected: set[str] | None = None) -> WorkerRun:
        result = run_worker(self.env, self.redis_url, job_ids, self.log_path, mode=mode)
        problem = check(result, label, expected)
        if problem:
            self.problems.append(problem)
            print(f"      ! {problem}", flush=True)
        return result

    def round(self, index: int, mode: str) -> dict[str, WorkerRun]:
        """One empty run, then no-op, typical and large calls (order rotates per round)."""
        self.client.flushdb()
        out = {"empty": self.run("empty", [], mode=mode)}
        typical, large = WORKLOADS
        plan = [("no-op", self.args.noops), (typical, self.args.calls),
                (large, self.args.large_calls)]
        shift = index % len(plan)
        for label, count in plan[shift:] + plan[:shift]:
            self.client.flushdb()
            if label == "no-op":
                ids = enqueue_noops(self.client, count, str(self._serial), ANALYSIS_QUEUE)
                self._serial += 1
                out[label] = self.run(label, ids, mode=mode, expected={"None"})
            else:
                ids = self._calls(count, WORKLOADS[label])
                out[label] = self.run(label, ids, mode=mode,
                                      expected={"alert", "no_alert"})
        return out

    def warm_up(self, mode: str) -> None:
        """One unmeasured no-op and call, so the bytecode cache holds every module."""
        self.client.flushdb()
        ids = enqueue_noops(self.client, 1, "warm", ANALYSIS_QUEUE) + self._calls(1, 2_500)
        self.run("warm-up", ids, mode=mode)

    def memory(self, events: int, mode: str) -> WorkerRun:
        """One call of ``events`` events, the worker's and work horse's peak memory."""
        self.client.flushdb()
        return self.run(f"memory {events}", self._calls(1, events), mode=mode,
                        expected={"alert", "no_alert"})


def classifier_figures() -> dict[int, tuple[float, float]]:
    """``bench/classify.py``'s measurement: size -> (classify CPU ms, events/s)."""
    from datetime import UTC, datetime
    from functools import partial

    from bench.classify import ACCOUNT_SID, CALL_SID, best_cpu_ms, synthetic_call
    from service.analysis.classifier import AlertPolicy, build_alert
    from service.calls import Call
    from service.insights.events import parse_events

    call, policy, now = Call(CALL_SID, ACCOUNT_SID, "completed", duration_s=600), AlertPolicy(), \
        datetime.now(UTC)
    out = {}
    for size in (50, 2_500, 10_000):
        events = parse_events(synthetic_call(size))
        cpu_ms = best_cpu_ms(partial(build_alert, call, events, policy, now=now),
                             max(5, 50_000 // size))
        out[size] = (cpu_ms, size / (cpu_ms / 1000) if cpu_ms else float("inf"))
    return out


def per_job_cpu_ms(run: WorkerRun, empty: WorkerRun) -> float:
    """CPU of the worker tree per job, start-up (the empty run's CPU) taken out."""
    return max(0.0, run.cpu_s - empty.cpu_s) / run.jobs * 1000 if run.jobs else 0.0


def summarise(rounds: list[dict[str, WorkerRun]]) -> dict[str, dict[str, float]]:
    """Per workload: median rate, median ratio to the round's no-op rate, CPU ms per job."""
    out = {}
    for label in ("no-op", *WORKLOADS):
        out[label] = {
            "rate": statistics.median(r[label].rate for r in rounds),
            "ratio": statistics.median(r[label].rate / r["no-op"].rate for r in rounds),
            "cpu_ms": statistics.median(per_job_cpu_ms(r[label], r["empty"]) for r in rounds),
            "jobs": rounds[0][label].jobs,
        }
    return out


def describe(index: int, mode: str, label: str, run: WorkerRun, empty: WorkerRun) -> str:
    return (f"{index:>5} {mode:>6} {label:>21} {run.jobs:>5} {run.window_s:>8.2f} "
            f"{run.rate:>8.1f} {per_job_cpu_ms(run, empty):>10.1f} {run.worker_hwm_mb:>9.0f} "
            f"{run.horse_hwm_mb:>8.0f}")


def markdown(summaries: Mapping[str, Mapping[str, Mapping[str, float]]],
             memory: Mapping[str, WorkerRun], classifier: Mapping[int, tuple[float, float]],
             rounds: int, command: str) -> str:
    lines = [f"Command: `{command}`  ", f"Machine: {machine()}  ",
             f"Median of {rounds} rounds; each ratio is taken within its round. CPU per job "
             "is the worker tree's, start-up taken out; a 2,500-event call's includes the "
             "log-sink delivery job of its alert.", "",
             "| worker | job | jobs per run | jobs/s | ratio to no-op | CPU ms per job |",
             "|---|---|---:|---:|---:|---:|"]
    for mode, summary in summaries.items():
        for label, fig in summary.items():
            lines.append(f"| {mode} | {label} | {fig['jobs']:.0f} | {fig['rate']:,.1f} | "
                         f"{fig['ratio']:.3f} | {fig['cpu_ms']:.1f} |")
    lines += ["", "| 10,000-event call | worker VmHWM MB | work horse VmHWM MB | target |",
              "|---|---:|---:|---|"]
    for mode, run in memory.items():
        peak = max(run.worker_hwm_mb, run.horse_hwm_mb)
        verdict = "met" if peak < MEMORY_TARGET_MB else "missed"
        lines.append(f"| {mode} | {run.worker_hwm_mb:.0f} | {run.horse_hwm_mb:.0f} | "
                     f"< {MEMORY_TARGET_MB:g} MB: {verdict} |")
    lines += ["", "| classifier (`build_alert`) | CPU ms | events/s | target |",
              "|---|---:|---:|---|"]
    for size, (cpu_ms, rate) in classifier.items():
        target = ""
        if size == 2_500:
            target = (f"< {CLASSIFY_TARGET_MS:g} ms: "
                      f"{'met' if cpu_ms < CLASSIFY_TARGET_MS else 'missed'}")
        lines.append(f"| {size:,} events | {cpu_ms:.2f} | {rate:,.0f} | {target} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--noops", type=int, default=200, help="no-op jobs per run")
    parser.add_argument("--calls", type=int, default=200, help="50-event calls per run")
    parser.add_argument("--large-calls", type=int, default=40, help="2,500-event calls per run")
    parser.add_argument("--memory-events", type=int, default=10_000)
    parser.add_argument("--modes", default="fork",
                        help="comma-separated worker modes: fork (--fork), simple "
                             "(--simple, the deployed default), preload (fork with "
                             "workers.jobs imported first; now the same as fork)")
    parser.add_argument("--no-pyc", action="store_true",
                        help="no bytecode cache: every work horse compiles what it imports")
    parser.add_argument("--markdown", action="store_true", help="also print a README block")
    args = parser.parse_args(argv)
    if min(args.rounds, args.noops, args.calls, args.large_calls) < 1:
        parser.error("--rounds, --noops, --calls and --large-calls must be positive")
    args.modes = args.modes.split(",")
    if not set(args.modes) <= {"fork", "simple", "preload"}:
        parser.error("--modes takes fork, simple and preload")
    return args


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the private Redis and servers are stopped."""
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _raise)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from devtools.redis_server import RedisServer
    from devtools.simulator.server import SimulatorServer

    args = parse_args(argv)
    exit_on_sigterm()
    command = "python bench/analyze.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(machine())
    print(f"{'round':>5} {'worker':>6} {'job':>21} {'jobs':>5} {'window s':>8} {'jobs/s':>8} "
          f"{'CPU ms/job':>10} {'worker MB':>9} {'horse MB':>8}", flush=True)
    summaries: dict[str, dict[str, dict[str, float]]] = {}
    memory: dict[str, WorkerRun] = {}
    with RedisServer() as server, SimulatorServer() as simulator, \
            tempfile.TemporaryDirectory(prefix="callwatch-bench-") as logs:
        pyc_dir = None if args.no_pyc else str(Path(logs) / "pyc")
        bench = AnalysisBench(args, server.url, simulator, Path(logs) / "worker.log", pyc_dir)
        for mode in args.modes:
            bench.warm_up(mode)
            rounds = []
            for i in range(args.rounds):
                result = bench.round(i, mode)
                for label in ("no-op", *WORKLOADS):
                    print(describe(i + 1, mode, label, result[label], result["empty"]), flush=True)
                rounds.append(result)
                simulator.reset()
            summaries[mode] = summarise(rounds)
            memory[mode] = bench.memory(args.memory_events, mode)
        bench.client.close()
    classifier = classifier_figures()
    for mode, summary in summaries.items():
        for label in WORKLOADS:
            fig = summary[label]
            print(f"{mode}: {label}: {fig['rate']:.1f} calls/s, {fig['ratio']:.3f} of no-op "
                  f"({summary['no-op']['rate']:.1f} jobs/s), {fig['cpu_ms']:.1f} CPU ms per call")
        run = memory[mode]
        print(f"{mode}: {args.memory_events:,}-event call: worker VmHWM {run.worker_hwm_mb:.0f} "
              f"MB, work horse {run.horse_hwm_mb:.0f} MB (target < {MEMORY_TARGET_MB:g} MB)")
    for size, (cpu_ms, rate) in classifier.items():
        print(f"classifier: {size:,} events in {cpu_ms:.2f} CPU ms, {rate:,.0f} events/s")
    if args.markdown:
        print("\n" + markdown(summaries, memory, classifier, args.rounds, command))
    for problem in bench.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
