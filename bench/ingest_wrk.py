"""Benchmark: the callback route under wrk, against a bare Flask route that does not parse the body.

Run from the project root (needs ``wrk`` on PATH: ``apt-get install wrk``)::

    .venv/bin/python bench/ingest_wrk.py [--rounds 3] [--seconds 10] [--connections 16] [--markdown]

The strictest fair comparison of ``bench/ingest.py``'s two servers: the load comes
from wrk, a native closed-loop generator (each of ``--connections`` keep-alive
connections sends its next request as soon as the answer arrives), so the Python
load generator's own cost no longer flattens the difference; and the baseline is
``bench.bare_app:app_no_form``, a Flask route that answers 204 without reading the
form. Both are served by gunicorn with the Procfile's config file and the same
environment (``bench.ingest.gunicorn``). ``--with-stock-worker`` also measures that route
on gunicorn's own gevent worker (``-k gevent``), without the config file's worker class
(its turn per request and deadline), and ``--with-form-baseline`` the route that parses
the form.

Every request is a distinct terminal callback (its own CallSid), signed before the
server is timed, so every answer from callwatch is the accepted-and-written path:
one admission to the intake, one log line. wrk's Lua script
(``bench/ingest_wrk.lua``) sends each prepared request at most once; a run that
would have to repeat one is reported as a problem. After each callwatch run
``ZCARD callwatch:intake`` must lie between the callbacks wrk counted as answered
2xx and that plus the connections (the requests still in flight when wrk stops are
written but not counted).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.ingest import group_cpu_s, gunicorn, machine, redis_cpu_s, signed_callbacks  # noqa: E402
from devtools.redis_server import RedisServer  # noqa: E402
from service.intake import INTAKE_KEY  # noqa: E402

APPS = {"bare": "bench.bare_app:app_no_form", "bare-form": "bench.bare_app:app",
        "bare-stock": "bench.bare_app:app_no_form", "callwatch": "workers.wsgi:app"}
#: Options that override the config file's, per app: ``bare-stock`` is the bare route on
#: gunicorn's own gevent worker (without callwatch's turn per request and deadline).
SERVER_OPTIONS = {"bare-stock": ("--worker-class", "gevent")}
LUA = ROOT / "bench" / "ingest_wrk.lua"
THROUGHPUT_TARGET = 0.5
#: wrk is given this long past its own duration before it is stopped.
WRK_GRACE_S = 30.0


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported (its ``done()`` line)."""

    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    wrapped: int
    generated: int

    @property
    def ok(self) -> int:
        return self.requests - self.status_errors

    @property
    def rate(self) -> float:
        """2xx answers per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Measurement:
    app: str
    result: WrkResult
    server_cpu_us: float | None
    redis_cpu_us: float
    admitted: int | None
    warmup_ok: int


def write_pool(directory: Path, name: str, base_url: str, first: int, count: int,
               threads: int) -> str:
    """Sign ``count`` callbacks from CallSid number ``first`` and split them over one file per
    wrk thread (``<prefix><thread id>``); returns the prefix."""
    prefix = str(directory / f"{name}-")
    requests = signed_callbacks(base_url, count, first)
    for thread in range(threads):
        with open(f"{prefix}{thread}", "w", encoding="ascii") as out:
            for request in requests[thread::threads]:
                signature = dict(request.headers)["X-Twilio-Signature"]
                out.write(f"{signature}\t{request.body.decode('ascii')}\n")
    return prefix


def run_wrk(url: str, prefix: str, *, seconds: float, connections: int,
            threads: int) -> WrkResult:
    """One wrk run; its summary comes from the Lua script's ``done()``."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
               "-s", str(LUA), url, "--", prefix]
    finished = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=seconds + WRK_GRACE_S)
    line = next((x for x in finished.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if finished.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({finished.returncode}):\n{finished.stdout}\n"
                           f"{finished.stderr}")
    data = json.loads(line.removeprefix("WRK_RESULT "))
    return WrkResult(
        requests=data["requests"], seconds=data["duration_us"] / 1e6,
        status_errors=data["status_errors"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        wrapped=data["wrapped"], generated=data["generated"])


class Bench:
    """Runs rounds of wrk against fresh servers sharing one private Redis."""

    def __init__(self, args: argparse.Namespace, redis_url: str, work: Path) -> None:
        self.args = args
        self.redis_url = redis_url
        self.work = work
        self._next_sid = 1

    def _pool(self, name: str, base_url: str, count: int) -> str:
        first, self._next_sid = self._next_sid, self._next_sid + count
        return write_pool(self.work, name, base_url, first, count, self.args.wrk_threads)

    def measure(self, app: str) -> Measurement:
        args = self.args
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        with gunicorn(APPS[app], self.redis_url, self.work, SERVER_OPTIONS.get(app, ())) as server:
            base = f"http://{server.target.host}:{server.target.port}"
            url = base + "/twilio/status-callback"
            warm = self._pool("warm", base, int(args.warmup * args.max_rate))
            pool = self._pool("measured", base, int(args.seconds * args.max_rate))
            warmup = run_wrk(url, warm, seconds=args.warmup, connections=args.connections,
                             threads=args.wrk_threads)
            cpu_before, redis_before = group_cpu_s(server.pgid), redis_cpu_s(client)
            result = run_wrk(url, pool, seconds=args.seconds, connections=args.connections,
                             threads=args.wrk_threads)
            cpu_after, redis_after = group_cpu_s(server.pgid), redis_cpu_s(client)
        answered = max(1, result.requests)
        server_cpu = None
        if cpu_before is not None and cpu_after is not None:
            server_cpu = (cpu_after - cpu_before) / answered * 1e6
        admitted = int(client.zcard(INTAKE_KEY)) if app == "callwatch" else None
        client.close()
        for name in ("warm", "measured"):
            for path in self.work.glob(f"{name}-*"):
                path.unlink()
        return Measurement(app, result, server_cpu, (redis_after - redis_before) / answered * 1e6,
                           admitted, warmup.ok)


def check(m: Measurement, connections: int) -> str | None:
    """A problem with a run's figures, or None."""
    r = m.result
    if r.wrapped:
        return f"{m.app}: wrk ran out of prepared requests and repeated some; raise --max-rate"
    if r.status_errors or r.socket_errors:
        return f"{m.app}: {r.status_errors} non-2xx answers, {r.socket_errors} socket errors"
    if m.admitted is not None:
        low = m.warmup_ok + r.ok
        if not low <= m.admitted <= low + 2 * connections:
            return (f"callwatch: {m.admitted} calls admitted for {low} callbacks answered 2xx "
                    f"(+ at most {2 * connections} in flight)")
    return None


def _us(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def describe(m: Measurement) -> str:
    admitted = "" if m.admitted is None else f" admitted={m.admitted:,}"
    return (f"{m.app:>10} {m.result.rate:>9,.0f} {_us(m.server_cpu_us):>8} "
            f"{_us(m.redis_cpu_us):>8} {m.result.status_errors + m.result.socket_errors:>6}"
            f"{admitted}")


def summarise(rounds: list[dict[str, Measurement]], apps: list[str]) -> dict[str, float]:
    """Medians over rounds of each figure, and of each round's callwatch/baseline ratios."""
    out: dict[str, float] = {}
    for app in apps:
        out[f"{app}_rate"] = statistics.median(r[app].result.rate for r in rounds)
        out[f"{app}_cpu"] = statistics.median(r[app].server_cpu_us or float("nan") for r in rounds)
        out[f"{app}_redis"] = statistics.median(r[app].redis_cpu_us for r in rounds)
        if app != "callwatch":
            out[f"ratio_{app}"] = statistics.median(
                r["callwatch"].result.rate / r[app].result.rate for r in rounds)
    return out


def markdown(rounds: list[dict[str, Measurement]], apps: list[str], summary: dict[str, float],
             command: str, args: argparse.Namespace) -> str:
    lines = [
        f"Command: `{command}`  ", f"Machine: {machine()}  ",
        f"Load: wrk {args.wrk_threads} threads x {args.connections} keep-alive connections "
        f"in total, closed loop, {args.warmup:g} s warm-up run then {args.seconds:g} s counted; "
        "every request a distinct signed `completed` callback.",
        "",
        "| round | app | req/s | gunicorn CPU µs/req | Redis CPU µs/req | errors | admitted |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(rounds, 1):
        for app in apps:
            m = r[app]
            admitted = "" if m.admitted is None else f"{m.admitted:,}"
            lines.append(f"| {i} | {app} | {m.result.rate:,.0f} | {_us(m.server_cpu_us)} | "
                         f"{_us(m.redis_cpu_us)} | "
                         f"{m.result.status_errors + m.result.socket_errors} | {admitted} |")
    lines += ["", "| median of rounds | req/s | gunicorn CPU µs/req | callwatch / this | target |",
              "|---|---:|---:|---:|---|"]
    for app in apps:
        ratio, target = "", ""
        if app != "callwatch":
            ratio = f"{summary[f'ratio_{app}']:.2f}"
            if app == "bare":
                met = summary["ratio_bare"] >= THROUGHPUT_TARGET
                target = f"≥ {THROUGHPUT_TARGET:.2f}: {'met' if met else 'missed'}"
        lines.append(f"| {app} | {summary[f'{app}_rate']:,.0f} | {_us(summary[f'{app}_cpu'])} | "
                     f"{ratio} | {target} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="counted wrk run")
    parser.add_argument("--warmup", type=float, default=1.0, help="uncounted wrk run before it")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--max-rate", type=float, default=8000.0,
                        help="distinct requests prepared per second of run")
    parser.add_argument("--with-form-baseline", action="store_true",
                        help="also measure the bare route that parses the form")
    parser.add_argument("--with-stock-worker", action="store_true",
                        help="also measure the bare route on gunicorn's own gevent worker")
    parser.add_argument("--markdown", action="store_true", help="also print a README block")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.connections < args.wrk_threads:
        parser.error("--rounds and --seconds must be positive, --connections >= --wrk-threads")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not on PATH (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 2
    command = "python bench/ingest_wrk.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    apps = (["bare", "callwatch"] + (["bare-form"] if args.with_form_baseline else [])
            + (["bare-stock"] if args.with_stock_worker else []))
    print(machine())
    print(f"{'round':>5} {'app':>10} {'req/s':>9} {'srv µs':>8} {'redis µs':>8} {'errors':>6}",
          flush=True)
    rounds: list[dict[str, Measurement]] = []
    problems: list[str] = []
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="callwatch-wrk-") as work:
        bench = Bench(args, server.url, Path(work))
        for i in range(args.rounds):
            order = apps if i % 2 == 0 else apps[::-1]
            results: dict[str, Measurement] = {}
            for app in order:
                results[app] = bench.measure(app)
                print(f"{i + 1:>5} {describe(results[app])}", flush=True)
                problem = check(results[app], args.connections)
                if problem:
                    problems.append(f"round {i + 1}: {problem}")
                    print(f"      ! {problem}", flush=True)
            rounds.append(results)
    summary = summarise(rounds, apps)
    print(f"median throughput ratio callwatch/bare (no form): {summary['ratio_bare']:.2f} "
          f"(target >= {THROUGHPUT_TARGET})")
    for app in apps[2:]:
        print(f"median throughput ratio callwatch/{app}: {summary[f'ratio_{app}']:.2f}")
    if args.markdown:
        print("\n" + markdown(rounds, apps, summary, command, args))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
