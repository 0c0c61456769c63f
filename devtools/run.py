"""``make run`` and ``make dev``: callwatch on this machine, end to end, in seconds.

With no ``TWILIO_ACCOUNT_SID`` in the environment it starts a private Redis, the
Twilio simulator, a Slack stand-in and a webhook receiver, then the ``web`` and
``worker`` processes exactly as the Procfile does. ``make run`` then plays a few
sample calls through them and prints each alert as the stand-ins receive it, then
(unless ``--once`` or ``--no-storm``) a storm of 60 calls failing alike, which Slack
shows as one incident opening, updating and resolving;
``make dev`` (``--procfile``) runs the Procfile under honcho instead, shows the
processes' logs and plays nothing: play calls with ``python -m devtools.play``.
With Twilio credentials in the environment it starts web and worker against your
configuration (and a private Redis unless ``REDIS_URL`` is set) and plays nothing.

Ctrl-C or SIGTERM stops everything it started, web and worker (and their children)
first, then the simulator and stand-ins, then the private Redis, whose temporary
folder is removed. ``make run`` writes the logs of web and worker to
``.run/web.log`` and ``.run/worker.log``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from devtools.process_groups import stop_groups
from devtools.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run"
VENV_BIN = Path(sys.executable).parent
WEBHOOK_SECRET = "whsec_Y2FsbHdhdGNoLWRldi1zZWNyZXQtMzJieXRlcyE="
#: The Slack app's signing secret of the demo: messages carry buttons, clicks are signed with it.
SLACK_SIGNING_SECRET = "callwatch-dev-slack-signing-secret"
#: Longest wait for web, worker (and honcho) to stop after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 15.0
SAMPLE_CALLS = (
    ("sdk-error", "completed", "the gateway hung up with an error (31005)"),
    ("warnings-cleared", "completed", "high RTT and jitter, raised then cleared"),
    ("mic-denied", "completed", "the browser denied the microphone"),
    ("clean", "completed", "a clean call: no alert expected"),
    ("clean", "failed", "a call that failed to connect (SIP 404)"),
    ("inbound-to-agent", "completed",
     "a caller answered by agent bob's browser (<Dial><Client>): only the phone leg's "
     "callback is sent; the agent's leg is found through the Calls API and alerted"),
)
#: The demo's routing file: errors also page on-call (the PagerDuty stand-in); every alert
#: goes to Slack, the webhook receiver and an hourly digest (posted to the Slack stand-in at
#: the top of the hour). ``{webhook}`` is the receiver's sink name, ``{slack}`` Slack's URL.
DEMO_ROUTES = """
sinks:
  oncall: {{type: pagerduty, routing_key: dev-routing-key}}
  hourly: {{type: slack, url: "{slack}", digest: {{every: hour}}}}
routes:
  - match: {{severity: error}}
    sinks: [oncall, slack, {webhook}, hourly]
default: [slack, {webhook}, hourly]
"""
#: Sample calls whose alert is an error (sdk-error, mic-denied, the failed call, the agent leg).
DEMO_ERRORS = 4
#: After the samples: this many calls failing alike, with short storm windows for the demo.
STORM_DEMO_CALLS = 60
STORM_DEMO = {"calls": 5, "within_s": 60, "group_by": ["issue"], "update_every_s": 10,
              "resolve_after_s": 20}


# --- stopping on SIGINT and SIGTERM ---------------------------------------------------

class Stopped(Exception):
    """Ctrl-C or SIGTERM: unwind, stopping everything started so far."""


class StopSignals:
    """Turns the first SIGINT or SIGTERM into ``Stopped``; later ones wait for the clean-up.

    Inside ``held()`` (starting a process and recording it for the clean-up) the
    signal is kept until the block ends, so nothing is started without being
    stopped. Once stopping, further signals are ignored: the clean-up is bounded
    (``STOP_TIMEOUT_S``, then SIGKILL) and must not be cut short halfway.
    """

    def __init__(self) -> None:
        self.pending: str | None = None
        self.stopping = False
        self._held = 0

    def install(self) -> StopSignals:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def begin_stop(self) -> None:
        """From now on, signals no longer interrupt (the clean-up has started)."""
        self.stopping = True

    @contextmanager
    def held(self) -> Iterator[None]:
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if self._held == 0 and self.pending and not self.stopping:
            self._stop()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            print(f"still stopping (at most {STOP_TIMEOUT_S:.0f} s)...", flush=True)
            return
        self.pending = signal.Signals(signum).name
        if self._held == 0:
            self._stop()

    def _stop(self) -> None:
        self.stopping = True
        print(f"\n{self.pending}: stopping web and worker, then the stand-ins and Redis...",
              flush=True)
        raise Stopped(self.pending)


# --- the Procfile's processes ------------------------------------------------------

def procfile_commands() -> dict[str, list[str]]:
    """The Procfile's process types, as argument lists."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" in line and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.split()
    return commands


def venv_env(env: dict[str, str]) -> dict[str, str]:
    """The environment children get: this one, ``env``, and this Python's bin first on PATH
    (so ``gunicorn`` and ``python`` in the Procfile are the virtual environment's)."""
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, **env, "PATH": path, "PYTHONUNBUFFERED": "1"}


def start_process(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """One Procfile process in a session of its own, its output in ``.run/<name>.log``."""
    RUN_DIR.mkdir(exist_ok=True)
    log = open(RUN_DIR / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
    args = procfile_commands()[name]
    executable = VENV_BIN / args[0]
    if executable.exists():
        args = [str(executable), *args[1:]]
    elif args[0] == "python":
        args = [sys.executable, *args[1:]]
    return subprocess.Popen(args, cwd=ROOT, env=venv_env(env), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def start_honcho(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """``honcho start web worker``: the Procfile's long-running processes, their output on
    this terminal. (``release`` is Heroku's one-off check before a deploy: honcho would
    stop everything once it exits.)

    ``.env`` is not read (``--env`` names an empty file): the environment given
    here, the simulator's included, is the whole configuration.
    """
    honcho = VENV_BIN / "honcho"
    command = [str(honcho)] if honcho.exists() else [sys.executable, "-m", "honcho"]
    return subprocess.Popen([*command, "start", "--port", str(port), "--env", os.devnull,
                             "web", "worker"],
                            cwd=ROOT, env=venv_env(env), start_new_session=True)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"web exited early; see {RUN_DIR / 'web.log'} or the output above")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"web did not become ready at {url}; see {RUN_DIR / 'web.log'}")


# --- the simulated outside world and what make run plays through it ------------------

class World:
    """The simulated outside world: Twilio, Slack, a webhook receiver and PagerDuty.

    ``servers`` are started in order and stopped in reverse; an extra stand-in is
    one more entry there and its variables in ``env``.
    """

    def __init__(self, port: int) -> None:
        from devtools.pagerduty_standin import PagerDutyStandIn
        from devtools.simulator import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
        from devtools.simulator.server import SimulatorServer
        from devtools.standins import SlackStandIn, WebhookReceiver

        self.account_sid, self.auth_token = DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
        self.simulator = SimulatorServer(account_sid=DEV_ACCOUNT_SID, auth_token=DEV_AUTH_TOKEN)
        self.slack = SlackStandIn(echo=True, signing_secret=SLACK_SIGNING_SECRET)
        self.webhook = WebhookReceiver(WEBHOOK_SECRET, echo=True)
        self.pagerduty = PagerDutyStandIn(echo=True)
        self.servers: list[Any] = [self.simulator, self.slack, self.webhook, self.pagerduty]
        self.port = port
        self.redis_url: str | None = None
        self._started = ExitStack()

    def __enter__(self) -> World:
        with ExitStack() as started:
            for server in self.servers:
                started.enter_context(server)
            self._started = started.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._started.close()

    @property
    def env(self) -> dict[str, str]:
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_INSIGHTS_BASE_URL": self.simulator.url,
            "TWILIO_API_BASE_URL": self.simulator.url,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "ANALYSIS_DELAY_SECONDS": "2",
            "ANALYSIS_RECHECK_SECONDS": "2,4",
            "SLACK_WEBHOOK_URL": self.slack.url,
            "ALERT_WEBHOOK_URLS": self.webhook.url,
            "ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
            **self.routing_env,
        }

    @property
    def routing_env(self) -> dict[str, str]:
        """A routed example: errors to the PagerDuty stand-in as well (CALLWATCH_CONFIG)."""
        from service.delivery.sinks.webhook import webhook_sink_names

        webhook = webhook_sink_names([self.webhook.url])[0]
        config = (DEMO_ROUTES.format(webhook=webhook, slack=self.slack.url)
                  + "storm: " + json.dumps(STORM_DEMO) + "\n")
        return {"CALLWATCH_CONFIG": config,
                "PAGERDUTY_EVENTS_URL": self.pagerduty.url}

    def play_hint(self, base: str) -> str:
        python = Path(sys.executable)
        shown = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
        return (f"Twilio simulator: {self.simulator.url}\n"
                f"play a call: {shown} -m devtools.play sdk-error "
                f"--url {base} --simulator {self.simulator.url}")


def play_samples(world: World, base: str, timeout: float = 60) -> bool:
    """The sample calls; True once each alert arrived in Slack and at the webhook receiver."""
    from devtools.simulator.sender import play_call

    expected = 0
    for scenario, status, what in SAMPLE_CALLS:
        statuses = ("initiated", "ringing", status) if status == "failed" else \
            ("initiated", "ringing", "in-progress", status)
        options: dict[str, Any] | None = {"sip_response_code": 404} if status == "failed" else None
        if scenario == "inbound-to-agent":
            options = {"agent": "bob"}  # another agent than the SDK samples' alice
        sid = play_call(world.simulator.url, base, world.account_sid, world.auth_token, scenario,
                        options=options, statuses=statuses)
        print(f"played {sid}: {what}")
        expected += scenario != "clean" or status == "failed"
    print(f"waiting for {expected} alerts (analysis runs 2 s after each call ends)...")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(world.slack.messages) >= expected and len(world.webhook.unique_ids()) >= expected:
            print(f"all {expected} alerts arrived in Slack and at the webhook receiver.")
            _show_child_legs(world)
            return True
        time.sleep(0.5)
    print(f"only {len(world.slack.messages)} Slack messages and "
          f"{len(world.webhook.unique_ids())} webhooks arrived; see {RUN_DIR}/worker.log")
    return False


def _show_child_legs(world: World) -> None:
    """Name the alerts of legs found through their parent (call.parent_call_sid)."""
    for delivery in world.webhook.accepted():
        data = delivery.body.get("data", {}) if isinstance(delivery.body, dict) else {}
        call = data.get("call") or {}
        if call.get("parent_call_sid"):
            print(f"the agent's leg {call.get('call_sid')} ({call.get('to')}) was found from "
                  f"phone leg {call['parent_call_sid']}'s callback alone and alerted.")
            return


def show_pages(world: World, base: str, timeout: float = 30) -> bool:
    """The routed example: only the error alerts reached the PagerDuty stand-in."""
    deadline = time.monotonic() + timeout
    while len(world.pagerduty.accepted()) < DEMO_ERRORS and time.monotonic() < deadline:
        time.sleep(0.2)
    got = len(world.pagerduty.accepted())
    print(f"PagerDuty stand-in got {got} triggers: the error alerts only, as CALLWATCH_CONFIG "
          "routes them.")
    return got == DEMO_ERRORS


def show_acting(world: World, base: str) -> bool:
    """The hourly digest so far, as it will be posted, and a ``curl`` line that clicks the
    sdk-error alert's "Silence issue 1 h" button, signed as Slack signs it."""
    from datetime import UTC, datetime

    import redis as redis_lib

    from service.delivery.digests.content import text
    from service.delivery.digests.periods import DigestPolicy, current_period, last_finished
    from service.delivery.digests.store import DigestStore

    ok = True
    if world.redis_url:
        policy = DigestPolicy(every="hour", minute=0)
        client = redis_lib.Redis.from_url(world.redis_url)
        now = datetime.now(UTC)
        which = "this hour's so far (posted to Slack at the top of the hour)"
        try:
            store = DigestStore(client)
            digest = store.read("hourly", policy, current_period(policy, now))
            if not digest.alerts:  # the calls were played before the hour turned
                digest = store.read("hourly", policy, last_finished(policy, now))
                which = "the hour that just ended (its digest is due now)"
        finally:
            client.close()
        ok = digest.alerts > 0
        print(f"\nthe sink `hourly` takes a digest instead of each alert; {which}:\n"
              + text(digest).rstrip())
    with_buttons = [message.payload for message in world.slack.accepted()
                    if isinstance(message.payload, dict)
                    and any(b.get("type") == "actions" for b in message.payload.get("blocks") or [])]
    if with_buttons:
        shown = with_buttons[0]
        blocks = shown["blocks"]
        [issue] = [e["value"] for b in blocks if b.get("type") == "actions"
                   for e in b["elements"] if e["action_id"] == "silence_issue"]
        # The message Slack sends back with a click, cut to its header and buttons here so
        # the line stays short: callwatch answers by replacing it, buttons off, who did what on.
        message = {"text": shown["text"], "blocks": [blocks[0], blocks[-1]]}
        print('\nclick "Silence issue 1 h" on the first alert, as Slack would (valid 5 minutes; '
              "the Slack stand-in prints the message's update):\n"
              + world.slack.curl_click(f"{base}/slack/actions", "silence_issue", issue,
                                       user="you", message=message))
    return ok and bool(with_buttons)


#: What ``make run`` plays once web and worker are up, in order. Each takes the world
#: and callwatch's base URL and returns True when every alert it expects arrived.
DEMOS: tuple[Callable[[World, str], bool], ...] = (play_samples, show_pages, show_acting)


def play_storm(world: World, base: str, timeout: float = 180) -> bool:
    """60 calls failing with one error: an incident opens, updates and resolves in Slack."""
    from devtools.simulator.sender import play_call

    print(f"\nnow a storm: {STORM_DEMO_CALLS} calls failing with error 31009 at once "
          f"(storm settings for the demo: {json.dumps(STORM_DEMO)})")
    before = len(world.slack.accepted())
    world.webhook.echo = False  # 60 per-call webhooks would bury the incident's messages
    for _ in range(STORM_DEMO_CALLS):
        play_call(world.simulator.url, base, world.account_sid, world.auth_token, "sdk-error",
                  options={"code": 31009})
    print(f"played {STORM_DEMO_CALLS} calls; the first {STORM_DEMO['calls'] - 1} alerts go out "
          f"one by one, then one incident (resolved {STORM_DEMO['resolve_after_s']} s after "
          "the last call)...")
    deadline = time.monotonic() + timeout
    resolved = False
    while time.monotonic() < deadline and not resolved:
        resolved = any("Incident resolved" in str(m.payload.get("text", ""))
                       for m in world.slack.accepted()[before:])
        time.sleep(0.5)
    shown = len(world.slack.accepted()) - before
    events = sum(1 for d in world.webhook.accepted()
                 if str(d.body.get("type", "")).startswith("incident."))
    alerts = sum(1 for d in world.webhook.accepted() if d.body.get("type") == "call.alert")
    print(f"storm: {STORM_DEMO_CALLS} failing calls became {shown} Slack messages; the webhook "
          f"receiver got every call.alert ({alerts} in all) and {events} incident events.")
    if world.redis_url:
        print(f"$ REDIS_URL={world.redis_url} callwatch incidents list")
        subprocess.run([sys.executable, "-m", "service.cli", "incidents", "list"],
                       env={**os.environ, "REDIS_URL": world.redis_url}, timeout=30, check=False)
    if not resolved:
        print(f"the incident did not resolve within {timeout:.0f} s; see {RUN_DIR}/worker.log")
    return resolved


# --- main ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--once", action="store_true",
                        help="stop after the sample calls' alerts arrived (used by the tests)")
    parser.add_argument("--no-storm", action="store_true",
                        help="skip the storm of failing calls played after the samples")
    parser.add_argument("--procfile", action="store_true",
                        help="run the Procfile under honcho and play nothing (make dev)")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # the stand-ins' echo, as it happens
    signals = StopSignals().install()
    try:
        return _run(args, signals)
    except Stopped as stop:
        print(f"{stop}: everything it started has stopped.", flush=True)
        return 0


def _run(args: argparse.Namespace, signals: StopSignals) -> int:
    port = args.port if _port_free(args.port) else free_port()
    base = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        # Unwound in reverse: web and worker stop while Redis still answers them.
        env: dict[str, str] = {"PORT": str(port),
                               "LOG_FORMAT": "console" if args.procfile else "json",
                               "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}"}
        if not os.environ.get("REDIS_URL"):
            with signals.held():
                redis = stack.enter_context(RedisServer())
            env["REDIS_URL"] = redis.url
        world = None
        if not os.environ.get("TWILIO_ACCOUNT_SID"):
            with signals.held():
                world = stack.enter_context(World(port))
            env.update(world.env)
            world.redis_url = env.get("REDIS_URL")
        processes: list[subprocess.Popen[bytes]] = []
        stack.callback(stop_groups, processes, timeout_s=STOP_TIMEOUT_S)
        stack.callback(signals.begin_stop)
        if args.procfile:
            with signals.held():
                processes.append(start_honcho(env, port))
        else:
            for name in ("web", "worker"):
                with signals.held():
                    processes.append(start_process(name, env))
        wait_ready(base + "/readyz", processes[0])
        where = "" if args.procfile else f"  (logs in {RUN_DIR}/)"
        print(f"callwatch is up: {base}/twilio/status-callback{where}", flush=True)
        if world is not None:
            print(world.play_hint(base), flush=True)
            if not args.procfile:
                ok = all([demo(world, base) for demo in DEMOS])
                if args.once:
                    return 0 if ok else 1
                if not args.no_storm:
                    play_storm(world, base)
        print("Press Ctrl-C to stop.", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        return 0


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
