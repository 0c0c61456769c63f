"""Benchmark: signed terminal status callbacks through gunicorn, against a bare Flask route.

Run from the project root::

    .venv/bin/python bench/ingest.py [--rounds 3] [--seconds 10] [--rate 200] [--markdown]

Each round starts, one after the other and in alternating order, two servers with
the Procfile's command (``gunicorn --config gunicorn.conf.py``, only the bind
address narrowed to 127.0.0.1) and the same environment: callwatch
(``workers.wsgi:app``, with a private Redis) and the bare route
(``bench.bare_app:app``). Against each it measures closed-loop throughput (2xx
per second, after a warm-up) and then latency at a fixed open-loop rate (from
each request's intended send time). Every request is a terminal callback with a
new CallSid, signed before timing starts, so each accepted one admits one
call to the intake; after a callwatch round ``ZCARD callwatch:intake`` must equal the
number of distinct callbacks accepted. The machine is small and shared, so the
report gives each round's callwatch/bare ratio and the median over rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bench.loadgen import LatencyResult, Request, Target, ThroughputResult, closed_loop, open_loop  # noqa: E402
from devtools.process_groups import stop_groups  # noqa: E402
from devtools.redis_server import RedisServer, free_port  # noqa: E402
from service.intake import INTAKE_KEY  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
CALLBACK_PATH = "/twilio/status-callback"
APPS = {"bare": "bench.bare_app:app", "callwatch": "workers.wsgi:app"}
#: p99 at the fixed rate must stay under this; throughput at least this share of bare's.
P99_TARGET_MS = 25.0
THROUGHPUT_TARGET = 0.6
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Measurement:
    """One server's figures in one round."""

    app: str
    throughput: ThroughputResult
    latency: LatencyResult
    jobs_scheduled: int | None = None
    #: CPU per request during the throughput run: gunicorn (master and workers), Redis.
    server_cpu_us: float | None = None
    redis_cpu_us: float | None = None


@dataclass(frozen=True)
class Server:
    """A running gunicorn: where to send requests, and its process group (for its CPU)."""

    target: Target
    pgid: int


def group_cpu_s(pgid: int) -> float | None:
    """CPU seconds of a process group (Linux /proc): its live processes, and the children
    they reaped (``cutime``/``cstime``: a forking RQ worker's work horses live one job each)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command: state ppid pgrp session tty tpgid flags minflt cminflt
        # majflt cmajflt utime stime cutime cstime (proc(5)).
        if int(fields[2]) == pgid:
            total += sum(int(f) for f in fields[11:15])
    return total / ticks


def redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def signed_callbacks(base_url: str, count: int, first: int) -> list[Request]:
    """``count`` terminal callbacks with CallSids ``first``.., signed for ``base_url``."""
    validator = RequestValidator(AUTH_TOKEN)
    url = base_url + CALLBACK_PATH
    requests = []
    for n in range(first, first + count):
        sid = f"CA{n:032x}"
        params = {
            "CallSid": sid, "AccountSid": ACCOUNT_SID, "CallStatus": "completed",
            "ApiVersion": "2010-04-01", "Direction": "outbound-api", "From": "client:alice",
            "To": "+14155550123", "CallbackSource": "call-progress-events",
            "Timestamp": "Fri, 27 Nov 2026 10:15:00 +0000", "SequenceNumber": "3",
            "CallDuration": "42",
        }
        headers = (("Content-Type", "application/x-www-form-urlencoded"),
                   ("X-Twilio-Signature", validator.compute_signature(url, params)))
        requests.append(Request("POST", CALLBACK_PATH, urlencode(params).encode(), headers, sid))
    return requests


def server_env(port: int, redis_url: str) -> dict[str, str]:
    """The same environment for both apps; WEB_CONCURRENCY/WEB_THREADS pass through."""
    return {
        **os.environ, "PORT": str(port), "REDIS_URL": redis_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
    }


def gunicorn_args(app: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    """The Procfile's web command, bound to loopback only (``extra`` options override the
    config file's)."""
    return [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
            "--bind", f"127.0.0.1:{port}", *extra, app]


@contextmanager
def gunicorn(app: str, redis_url: str, log_dir: Path,
             extra: Sequence[str] = ()) -> Iterator[Server]:
    """A running gunicorn serving ``app``; its output goes to a file, not the terminal."""
    port = free_port()
    log_path = log_dir / f"{app.split(':')[0]}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            gunicorn_args(app, port, extra), cwd=ROOT, env=server_env(port, redis_url),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, port, log_path)
        yield Server(Target("127.0.0.1", port), proc.pid)
    finally:
        stop_groups([proc], timeout_s=30)


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"gunicorn exited ({proc.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn not healthy after {START_TIMEOUT_S} s")
        time.sleep(0.1)


class Bench:
    """Runs rounds of measurements against one private Redis."""

    def __init__(self, args: argparse.Namespace, redis_url: str, log_dir: Path) -> None:
        self.args = args
        self.redis_url = redis_url
        self.log_dir = log_dir
        self._next_sid = 1

    def _requests(self, target: Target, count: int) -> list[Request]:
        first, self._next_sid = self._next_sid, self._next_sid + count
        return signed_callbacks(f"http://{target.host}:{target.port}", count, first)

    def measure(self, app: str) -> Measurement:
        """Throughput, then latency at the fixed rate, against a fresh server (and Redis)."""
        args = self.args
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        with gunicorn(APPS[app], self.redis_url, self.log_dir) as server:
            target = server.target
            pool = self._requests(target, int((args.seconds + args.warmup) * args.max_rate))
            spot = self._requests(target, int(args.rate * args.latency_seconds))
            cpu_before, redis_before = group_cpu_s(server.pgid), redis_cpu_s(client)
            throughput = closed_loop(target, pool, seconds=args.seconds, warmup_s=args.warmup,
                                     processes=args.procs, threads=args.threads)
            cpu_after, redis_after = group_cpu_s(server.pgid), redis_cpu_s(client)
            latency = open_loop(target, spot, rate=args.rate, threads=args.threads)
        sent = max(1, throughput.sent)
        server_cpu = None
        if cpu_before is not None and cpu_after is not None:
            server_cpu = (cpu_after - cpu_before) / sent * 1e6
        jobs = None
        if app == "callwatch":
            jobs = int(client.zcard(INTAKE_KEY))
        client.close()
        return Measurement(app, throughput, latency, jobs, server_cpu,
                           (redis_after - redis_before) / sent * 1e6)


def ms(seconds: float) -> float:
    return seconds * 1000


def check(m: Measurement) -> str | None:
    """A problem with the round's figures, or None."""
    if m.throughput.exhausted:
        return f"{m.app}: ran out of prepared requests; raise --max-rate"
    if m.jobs_scheduled is not None:
        accepted = len(m.throughput.accepted_keys | m.latency.accepted_keys)
        if m.jobs_scheduled != accepted:
            return f"callwatch: {m.jobs_scheduled} jobs scheduled for {accepted} accepted callbacks"
    return None


def describe(m: Measurement) -> str:
    t, lat = m.throughput, m.latency
    jobs = "" if m.jobs_scheduled is None else f" jobs={m.jobs_scheduled}"
    return (f"{m.app:>9} {t.rate:>9,.0f} {t.errors:>6} {_us(m.server_cpu_us):>8} "
            f"{_us(m.redis_cpu_us):>8} {ms(lat.p50):>8.2f} {ms(lat.p99):>8.2f} "
            f"{ms(lat.max):>8.2f} {lat.errors:>6}{jobs}")


def _us(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def summarise(rounds: list[dict[str, Measurement]]) -> dict[str, float]:
    """Medians over rounds of each figure and of each round's callwatch/bare ratio."""
    def med(app: str, fig: str) -> float:
        return statistics.median(_figure(r[app], fig) for r in rounds)

    def ratio(fig: str) -> float:
        return statistics.median(_figure(r["callwatch"], fig) / _figure(r["bare"], fig)
                                 for r in rounds)

    out = {}
    for fig in ("rate", "p50", "p99", "max", "cpu"):
        out[f"bare_{fig}"], out[f"callwatch_{fig}"] = med("bare", fig), med("callwatch", fig)
        out[f"ratio_{fig}"] = ratio(fig)
    return out


def _figure(m: Measurement, fig: str) -> float:
    if fig == "rate":
        return m.throughput.rate
    if fig == "cpu":
        return m.server_cpu_us if m.server_cpu_us is not None else float("nan")
    return ms(getattr(m.latency, fig))


def machine() -> str:
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    threads = os.environ.get("WEB_THREADS", "4")
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"gunicorn WEB_CONCURRENCY={workers} WEB_THREADS={threads}")


def markdown(rounds: list[dict[str, Measurement]], summary: Mapping[str, float], command: str,
             args: argparse.Namespace) -> str:
    lines = [
        f"Command: `{command}`  ", f"Machine: {machine()}  ",
        f"Load: closed loop {args.procs} processes x {args.threads} keep-alive connections, "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s; open loop {args.rate:g} req/s for "
        f"{args.latency_seconds:g} s, latency from the intended send time.",
        "",
        "| round | app | req/s | gunicorn CPU µs/req | Redis CPU µs/req | p50 ms | p99 ms "
        "| max ms | errors | jobs scheduled |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(rounds, 1):
        for app in ("bare", "callwatch"):
            m = r[app]
            jobs = "" if m.jobs_scheduled is None else f"{m.jobs_scheduled:,}"
            lines.append(f"| {i} | {app} | {m.throughput.rate:,.0f} | {_us(m.server_cpu_us)} | "
                         f"{_us(m.redis_cpu_us)} | {ms(m.latency.p50):.2f} | "
                         f"{ms(m.latency.p99):.2f} | {ms(m.latency.max):.2f} | "
                         f"{m.throughput.errors + m.latency.errors} | {jobs} |")
    s = summary
    lines += [
        "",
        "| median of rounds | bare | callwatch | callwatch / bare | target |",
        "|---|---:|---:|---:|---|",
        f"| throughput, req/s | {s['bare_rate']:,.0f} | {s['callwatch_rate']:,.0f} | "
        f"{s['ratio_rate']:.2f} | ≥ {THROUGHPUT_TARGET:.2f}: "
        f"{'met' if s['ratio_rate'] >= THROUGHPUT_TARGET else 'missed'} |",
        f"| gunicorn CPU per request, µs | {s['bare_cpu']:,.0f} | {s['callwatch_cpu']:,.0f} | "
        f"{s['ratio_cpu']:.2f} | |",
        f"| p50 at {args.rate:g} req/s, ms | {s['bare_p50']:.2f} | {s['callwatch_p50']:.2f} | "
        f"{s['ratio_p50']:.2f} | |",
        f"| p99 at {args.rate:g} req/s, ms | {s['bare_p99']:.2f} | {s['callwatch_p99']:.2f} | "
        f"{s['ratio_p99']:.2f} | < {P99_TARGET_MS:g} ms: "
        f"{'met' if s['callwatch_p99'] < P99_TARGET_MS else 'missed'} |",
        f"| max at {args.rate:g} req/s, ms | {s['bare_max']:.2f} | {s['callwatch_max']:.2f} | "
        f"{s['ratio_max']:.2f} | |",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured throughput window")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured start of each run")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests per second")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--threads", type=int, default=8, help="connections per process")
    parser.add_argument("--max-rate", type=float, default=5000.0,
                        help="requests prepared per second of throughput run")
    parser.add_argument("--markdown", action="store_true", help="also print a README block")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.rate <= 0 or args.latency_seconds <= 0:
        parser.error("--rounds, --seconds, --rate and --latency-seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/ingest.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(machine())
    print(f"{'round':>5} {'app':>9} {'req/s':>9} {'errors':>6} {'srv µs':>8} {'redis µs':>8} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}", flush=True)
    rounds: list[dict[str, Measurement]] = []
    problems: list[str] = []
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="callwatch-bench-") as logs:
        bench = Bench(args, server.url, Path(logs))
        for i in range(args.rounds):
            order = ("bare", "callwatch") if i % 2 == 0 else ("callwatch", "bare")
            results: dict[str, Measurement] = {}
            for app in order:
                results[app] = bench.measure(app)
                print(f"{i + 1:>5} {describe(results[app])}", flush=True)
                problem = check(results[app])
                if problem:
                    problems.append(f"round {i + 1}: {problem}")
                    print(f"      ! {problem}", flush=True)
            rounds.append(results)
    summary = summarise(rounds)
    print(f"median throughput ratio callwatch/bare: {summary['ratio_rate']:.2f} "
          f"(target >= {THROUGHPUT_TARGET})")
    print(f"median p50/p99 at {args.rate:g} req/s: callwatch {summary['callwatch_p50']:.2f}/"
          f"{summary['callwatch_p99']:.2f} ms, bare {summary['bare_p50']:.2f}/"
          f"{summary['bare_p99']:.2f} ms; ratios {summary['ratio_p50']:.2f}/"
          f"{summary['ratio_p99']:.2f} (target p99 < {P99_TARGET_MS:g} ms)")
    if args.markdown:
        print("\n" + markdown(rounds, summary, command, args))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
