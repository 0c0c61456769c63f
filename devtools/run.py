"""``make run``: callwatch on this machine, end to end, in seconds.

With no ``TWILIO_ACCOUNT_SID`` in the environment it starts a private Redis, the
Twilio simulator, a Slack stand-in and a webhook receiver, then the ``web`` and
``worker`` processes exactly as the Procfile does, plays a few sample calls through
them and prints each alert as the stand-ins receive it, then (unless ``--once`` or
``--no-storm``) a storm of 60 calls failing alike, which Slack shows as one incident
opening, updating and resolving. With Twilio credentials in
the environment it starts web and worker against your configuration (and a private
Redis unless ``REDIS_URL`` is set) and plays nothing.

Logs of web and worker go to ``.run/web.log`` and ``.run/worker.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from devtools.process_groups import stop_groups
from devtools.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run"
WEBHOOK_SECRET = "whsec_Y2FsbHdhdGNoLWRldi1zZWNyZXQtMzJieXRlcyE="
SAMPLE_CALLS = (
    ("sdk-error", "completed", "a signalling error (31005) on the caller's SDK"),
    ("warnings-cleared", "completed", "high RTT and jitter, raised then cleared"),
    ("mic-denied", "completed", "the browser denied the microphone"),
    ("clean", "completed", "a clean call: no alert expected"),
    ("clean", "failed", "a call that failed to connect (SIP 404)"),
)
#: After the samples: this many calls failing alike, with short storm windows for the demo.
STORM_DEMO_CALLS = 60
STORM_DEMO = {"calls": 5, "within_s": 60, "group_by": ["issue"], "update_every_s": 10,
              "resolve_after_s": 20}


def procfile_commands() -> dict[str, list[str]]:
    """The Procfile's process types, as argument lists."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" in line and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.split()
    return commands


def start_process(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    RUN_DIR.mkdir(exist_ok=True)
    log = open(RUN_DIR / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
    args = procfile_commands()[name]
    executable = Path(sys.executable).parent / args[0]
    if executable.exists():
        args = [str(executable), *args[1:]]
    elif args[0] == "python":
        args = [sys.executable, *args[1:]]
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"web exited early; see {RUN_DIR / 'web.log'}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"web did not become ready at {url}; see {RUN_DIR / 'web.log'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--once", action="store_true",
                        help="stop after the sample calls' alerts arrived (used by the tests)")
    parser.add_argument("--no-storm", action="store_true",
                        help="skip the storm of failing calls played after the samples")
    args = parser.parse_args(argv)
    port = args.port if _port_free(args.port) else free_port()
    with ExitStack() as stack:
        env: dict[str, str] = {"PORT": str(port), "LOG_FORMAT": "json",
                               "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}"}
        if not os.environ.get("REDIS_URL"):
            redis = stack.enter_context(RedisServer())
            env["REDIS_URL"] = redis.url
        simulated = not os.environ.get("TWILIO_ACCOUNT_SID")
        if simulated:
            demo = stack.enter_context(_Demo(port))
            env.update(demo.env)
        processes = [start_process("web", env), start_process("worker", env)]
        stack.callback(stop_groups, processes)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/readyz", processes[0])
        print(f"callwatch is up: {base}/twilio/status-callback  (logs in {RUN_DIR}/)")
        if simulated:
            ok = demo.play_samples(base)
            if args.once:
                return 0 if ok else 1
            if not args.no_storm:
                demo.play_storm(base, env.get("REDIS_URL"))
        print("Press Ctrl-C to stop.")
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            print()
        return 0


class _Demo:
    """The simulated outside world: Twilio, Slack and a webhook receiver."""

    def __init__(self, port: int) -> None:
        from devtools.simulator import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
        from devtools.simulator.server import SimulatorServer
        from devtools.standins import SlackStandIn, WebhookReceiver

        self.account_sid, self.auth_token = DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
        self.simulator = SimulatorServer(account_sid=DEV_ACCOUNT_SID, auth_token=DEV_AUTH_TOKEN)
        self.slack = SlackStandIn(echo=True)
        self.webhook = WebhookReceiver(WEBHOOK_SECRET, echo=True)
        self.port = port

    def __enter__(self) -> _Demo:
        self.simulator.start()
        self.slack.start()
        self.webhook.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.webhook.stop()
        self.slack.stop()
        self.simulator.stop()

    @property
    def env(self) -> dict[str, str]:
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_INSIGHTS_BASE_URL": self.simulator.url,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "ANALYSIS_DELAY_SECONDS": "2",
            "ANALYSIS_RECHECK_SECONDS": "2,4",
            "SLACK_WEBHOOK_URL": self.slack.url,
            "ALERT_WEBHOOK_URLS": self.webhook.url,
            "ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CALLWATCH_CONFIG": json.dumps({"storm": STORM_DEMO}),
        }

    def play_samples(self, base: str, timeout: float = 60) -> bool:
        from devtools.simulator.sender import play_call

        expected = 0
        for scenario, status, what in SAMPLE_CALLS:
            statuses = ("initiated", "ringing", status) if status == "failed" else \
                ("initiated", "ringing", "in-progress", status)
            options = {"sip_response_code": 404} if status == "failed" else None
            sid = play_call(self.simulator.url, base, self.account_sid, self.auth_token, scenario,
                            options=options, statuses=statuses)
            print(f"played {sid}: {what}")
            expected += scenario != "clean" or status == "failed"
        print(f"waiting for {expected} alerts (analysis runs 2 s after each call ends)...")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.slack.messages) >= expected and len(self.webhook.unique_ids()) >= expected:
                print(f"all {expected} alerts arrived in Slack and at the webhook receiver.")
                return True
            time.sleep(0.5)
        print(f"only {len(self.slack.messages)} Slack messages and "
              f"{len(self.webhook.unique_ids())} webhooks arrived; see {RUN_DIR}/worker.log")
        return False


    def play_storm(self, base: str, redis_url: str | None, timeout: float = 180) -> bool:
        """60 calls failing with one error: an incident opens, updates and resolves in Slack."""
        from devtools.simulator.sender import play_call

        print(f"\nnow a storm: {STORM_DEMO_CALLS} calls failing with error 31009 at once "
              f"(storm settings for the demo: {json.dumps(STORM_DEMO)})")
        before = len(self.slack.accepted())
        self.webhook.echo = False  # 60 per-call webhooks would bury the incident's messages
        for _ in range(STORM_DEMO_CALLS):
            play_call(self.simulator.url, base, self.account_sid, self.auth_token, "sdk-error",
                      options={"code": 31009})
        print(f"played {STORM_DEMO_CALLS} calls; the first {STORM_DEMO['calls'] - 1} alerts go out "
              f"one by one, then one incident (resolved {STORM_DEMO['resolve_after_s']} s after "
              "the last call)...")
        deadline = time.monotonic() + timeout
        resolved = False
        while time.monotonic() < deadline and not resolved:
            resolved = any("Incident resolved" in str(m.payload.get("text", ""))
                           for m in self.slack.accepted()[before:])
            time.sleep(0.5)
        shown = len(self.slack.accepted()) - before
        events = sum(1 for d in self.webhook.accepted()
                     if str(d.body.get("type", "")).startswith("incident."))
        alerts = sum(1 for d in self.webhook.accepted() if d.body.get("type") == "call.alert")
        print(f"storm: {STORM_DEMO_CALLS} failing calls became {shown} Slack messages; the webhook "
              f"receiver got every call.alert ({alerts} in all) and {events} incident events.")
        if redis_url:
            print(f"$ REDIS_URL={redis_url} callwatch incidents list")
            subprocess.run([sys.executable, "-m", "service.cli", "incidents", "list"],
                           env={**os.environ, "REDIS_URL": redis_url}, timeout=30, check=False)
        if not resolved:
            print(f"the incident did not resolve within {timeout:.0f} s; see {RUN_DIR}/worker.log")
        return resolved

def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
