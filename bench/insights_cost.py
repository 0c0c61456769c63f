"""Benchmark: Insights Events API requests per analysed call, on a phone/SDK mix.

Run from the project root::

    .venv/bin/python bench/insights_cost.py [--calls 200] [--sdk-share 0.3] [--markdown]
    .venv/bin/python bench/insights_cost.py --unlabelled   # phone legs that look like SDK legs

The real pipeline in one process: callwatch's Flask app takes each signed status
callback, the intake schedules the analysis, RQ's ``SimpleWorker`` runs the jobs
(the analysis job with the real ``InsightsClient``, then delivery jobs to the log
sink), a private Redis holds everything, and the Twilio simulator serves the
Events API and logs every request. Settings are the defaults (``INSIGHTS_EDGES``
``sdk_edge``, three re-checks) except that the waits are zero, so a re-check costs
its request without its minutes.

The mix: ``1 - sdk_share`` of the calls are phone-to-phone legs (``From`` and ``To``
phone numbers; the simulator holds only carrier-edge events for them, so the SDK
edge is empty), the rest Voice SDK legs (``From`` ``client:alice``) cycling through
the SDK scenarios. ``--unlabelled`` gives the phone legs a ``client:`` ``From``: the
cost when callwatch cannot tell a phone leg, which is what every phone leg cost
before legs without an SDK party were skipped. Targets: at most 0.35 requests
per call on the 70/30 mix, 1.1 per SDK call, 0 per phone-only call.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402

from devtools.pipeline import drain  # noqa: E402
from devtools.redis_server import RedisServer  # noqa: E402
from devtools.simulator.sender import callback_params, sign  # noqa: E402
from devtools.simulator.server import SimulatorServer  # noqa: E402
from service.calls import CALLBACK_PATH  # noqa: E402
from service.logs import configure_logging  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.web import create_app  # noqa: E402
from workers import context  # noqa: E402

PUBLIC = "https://callwatch.bench"
SDK_SCENARIOS = ("clean", "warnings-cleared", "sdk-error", "ice-reconnected", "mic-denied",
                 "warning-uncleared", "clean", "busy")
PHONE = {"From": "+14155550100", "To": "+16505550123"}
#: Longest the pipeline may take to finish every call's analysis and deliveries.
DRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Cost:
    """Requests per analysed call, overall and by kind of leg."""

    calls: int
    phone_calls: int
    sdk_calls: int
    requests: int
    phone_requests: int
    sdk_requests: int

    def per(self, requests: int, calls: int) -> float:
        return requests / calls if calls else 0.0


def run(calls: int, sdk_share: float, *, unlabelled: bool) -> Cost:
    """Play the mix through the pipeline; count the simulator's Events requests per call."""
    with RedisServer() as server, SimulatorServer() as simulator:
        redis = redis_lib.Redis.from_url(server.url)
        settings = Settings.from_env({
            "TWILIO_ACCOUNT_SID": simulator.account_sid,
            "TWILIO_AUTH_TOKEN": simulator.auth_token,
            "TWILIO_INSIGHTS_BASE_URL": simulator.url, "REDIS_URL": server.url,
            "PUBLIC_BASE_URL": PUBLIC, "ANALYSIS_DELAY_SECONDS": "0",
            "ANALYSIS_RECHECK_SECONDS": "0,0,0", "LOG_LEVEL": "WARNING",
        })
        configure_logging("ERROR", "json")  # the log sink would print every alert
        context.configure(settings, redis)
        client = create_app(settings, redis=redis).test_client()
        kinds: dict[str, str] = {}
        for number in range(calls):
            sdk = _is_sdk(number, sdk_share)
            if sdk:
                scenario = SDK_SCENARIOS[len([k for k in kinds.values() if k == "sdk"])
                                         % len(SDK_SCENARIOS)]
                sid = simulator.add_call(scenario)
                fields = {}
            else:
                sid = simulator.add_call("clean", call_type="carrier")
                fields = {**PHONE, **({"From": "client:unknown"} if unlabelled else {})}
            kinds[sid] = "sdk" if sdk else "phone"
            params = callback_params(sid, settings.twilio_account_sid, "completed", **fields)
            response = client.post(CALLBACK_PATH, data=params, headers={
                "X-Twilio-Signature": sign(PUBLIC + CALLBACK_PATH, params, settings.twilio_auth_token)})
            if response.status_code != 204:
                raise SystemExit(f"callback refused: {response.status_code} {response.data!r}")
        drain(redis, timeout=DRAIN_TIMEOUT_S, ahead_s=1, logging_level="WARNING")
        per_call = Counter(r["call_sid"] for r in simulator.requests
                           if str(r["path"]).endswith("/Events"))
    phone = [sid for sid, kind in kinds.items() if kind == "phone"]
    sdk_sids = [sid for sid, kind in kinds.items() if kind == "sdk"]
    return Cost(calls=calls, phone_calls=len(phone), sdk_calls=len(sdk_sids),
                requests=sum(per_call.values()),
                phone_requests=sum(per_call[sid] for sid in phone),
                sdk_requests=sum(per_call[sid] for sid in sdk_sids))


def _is_sdk(number: int, share: float) -> bool:
    """Spread the SDK calls evenly: call ``n`` is one when the running share falls short."""
    return int((number + 1) * share) > int(number * share)


def report(cost: Cost, *, markdown: bool, command: str) -> str:
    rows = [
        ("all calls", cost.calls, cost.requests, cost.per(cost.requests, cost.calls), 0.35),
        ("phone-only calls", cost.phone_calls, cost.phone_requests,
         cost.per(cost.phone_requests, cost.phone_calls), 0.0),
        ("Voice SDK calls", cost.sdk_calls, cost.sdk_requests,
         cost.per(cost.sdk_requests, cost.sdk_calls), 1.1),
    ]
    if markdown:
        lines = [f"`{command}` ({platform.python_version()}, {os.cpu_count()} CPUs)", "",
                 "| calls | n | Events requests | per call | target |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {n} | {req} | {per:.2f} | ≤ {target:g} |"
                  for name, n, req, per, target in rows]
        return "\n".join(lines)
    return "\n".join(f"{name:17} {n:5} calls {req:6} requests  {per:5.2f} per call "
                     f"(target ≤ {target:g})" for name, n, req, per, target in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--sdk-share", type=float, default=0.3)
    parser.add_argument("--unlabelled", action="store_true",
                        help="phone legs carry a client: From (callwatch cannot skip them)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.calls < 1 or not 0 <= args.sdk_share <= 1:
        parser.error("--calls must be at least 1 and --sdk-share from 0 to 1")
    cost = run(args.calls, args.sdk_share, unlabelled=args.unlabelled)
    command = "python bench/insights_cost.py " + shlex.join(sys.argv[1:])
    print(report(cost, markdown=args.markdown, command=command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
