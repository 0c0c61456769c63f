"""Benchmark: callwatch's web edge and HTTP clients against hostile peers, on loopback.

Run from the project root::

    .venv/bin/python bench/hostile.py [--seconds 20] [--worker-class gevent] [--budget 10]

1. **Slow clients.** gunicorn as the Procfile runs it (``bench.ingest.gunicorn``, default
   workers) with 200 idle connections and 16 that send one header line every 2 s, all
   reopened as soon as the server closes them. For ``--seconds`` it times ``/healthz`` and
   a signed terminal callback, one of each every 0.5 s (a 10 s timeout counts as failed).
2. **Dripping Insights page.** ``InsightsClient.fetch_events`` against a page that sends a
   byte every 2 s, with a fetch budget of ``--budget`` seconds: how long the fetch lasts.
3. **Huge answers.** A 300 MB answer to a Slack post and a 100 MB Insights page: the
   process's resident memory before and after (VmRSS, and the peak VmHWM) and the time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.ingest import gunicorn, signed_callbacks  # noqa: E402
from devtools.hostile_peers import HostilePeer, drip, huge  # noqa: E402
from devtools.redis_server import RedisServer  # noqa: E402
from devtools.sample_alerts import sample_alert  # noqa: E402
from devtools.slow_clients import SlowClients  # noqa: E402
from service.errors import CallwatchError  # noqa: E402
from service.insights.client import InsightsClient  # noqa: E402

CALL = "CA" + "ab" * 16
TIMEOUT_S = 10.0


def _memory_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def slow_clients(seconds: float) -> None:
    with RedisServer() as redis_server, tempfile.TemporaryDirectory() as logs, \
            gunicorn("workers.wsgi:app", redis_server.url, Path(logs)) as web:
        base = f"http://127.0.0.1:{web.target.port}"
        callbacks = iter(signed_callbacks(base, 10_000, 0x7000))
        times: dict[str, list[float]] = {"healthz": [], "callback": []}
        failed = {"healthz": 0, "callback": 0}
        with SlowClients(web.target.port, idle=200, trickle=16, trickle_every_s=2.0) as attack:
            time.sleep(1.0)
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                for name in times:
                    started = time.monotonic()
                    try:
                        if name == "healthz":
                            ok = requests.get(f"{base}/healthz", timeout=TIMEOUT_S).ok
                        else:
                            cb = next(callbacks)
                            ok = requests.post(base + cb.path, data=cb.body, headers=dict(cb.headers),
                                               timeout=TIMEOUT_S).status_code == 204
                    except requests.RequestException:
                        ok = False
                    if ok:
                        times[name].append(time.monotonic() - started)
                    else:
                        failed[name] += 1
                time.sleep(0.5)
            opened, cut = attack.opened, attack.closed_by_server
        print(f"slow clients: 200 idle + 16 trickling (1 line / 2 s) for {seconds:g} s; "
              f"{opened} slow connections opened, {cut} closed by the server")
        for name, values in times.items():
            if values:
                print(f"  {name}: {len(values)} answered, {failed[name]} failed; "
                      f"median {statistics.median(values) * 1000:.1f} ms, "
                      f"max {max(values) * 1000:.1f} ms")
            else:
                print(f"  {name}: none answered within {TIMEOUT_S:g} s ({failed[name]} failed)")


def dripping_page(budget: float) -> None:
    with HostilePeer(drip(2.0, prefix=b'{"meta": {}, "events": [', announced=100_000)) as peer:
        client = InsightsClient(peer.url, ("AC1", "t"), fetch_budget_s=budget)
        started = time.monotonic()
        try:
            client.fetch_events(CALL, ["sdk_edge"])
            outcome = "returned"
        except CallwatchError as error:
            outcome = f"{type(error).__name__}: {error}"
        elapsed = time.monotonic() - started
    print(f"dripping Insights page (1 byte / 2 s), budget {budget:g} s: ended after "
          f"{elapsed:.1f} s with {outcome}")


def huge_answers() -> None:
    from service.delivery.sinks.slack import SlackSink

    cases = [
        ("Slack answer 300 MB", 300, lambda url: SlackSink(url + "/services/T/B/X").send(sample_alert())),
        ("Insights page 100 MB", 100,
         lambda url: InsightsClient(url, ("AC1", "t")).fetch_events(CALL, ["sdk_edge"])),
    ]
    for name, megabytes, run in cases:
        rss_before, hwm_before = _memory_kib()
        with HostilePeer(huge(megabytes * 1024 * 1024)) as peer:
            started = time.monotonic()
            try:
                run(peer.url)
                outcome = "delivered"
            except CallwatchError as error:
                outcome = f"{type(error).__name__} ({getattr(error, 'reason', '')})"
            elapsed = time.monotonic() - started
        rss_after, hwm_after = _memory_kib()
        print(f"{name}: {outcome} in {elapsed * 1000:.0f} ms; peer wrote "
              f"{peer.sent / 1024 / 1024:.1f} MiB; RSS {rss_before / 1024:.0f} -> "
              f"{rss_after / 1024:.0f} MiB, peak {hwm_before / 1024:.0f} -> {hwm_after / 1024:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--budget", type=float, default=10.0, help="Insights fetch budget (s)")
    parser.add_argument("--only", choices=["slow", "drip", "huge"])
    args = parser.parse_args(argv)
    if args.only in (None, "huge"):
        huge_answers()
    if args.only in (None, "drip"):
        dripping_page(args.budget)
    if args.only in (None, "slow"):
        slow_clients(args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
