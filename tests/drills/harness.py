"""The drills' stage: callwatch as the Procfile starts it, Twilio-like callbacks, the tally.

``Stack`` starts ``web`` (gunicorn with ``gunicorn.conf.py``, bound to loopback) and any
number of ``worker`` processes over one private Redis, the Twilio simulator and the
loopback receivers. ``TwilioCallbacks`` posts signed terminal callbacks and, like a
callback URL carrying ``#rc=3&rp=5xx``, retries a 5xx answer. ``Tally`` is the line
every drill ends with: callbacks accepted, alerts expected, delivered, duplicates.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as redis_lib
import requests

from devtools.processes import Process, worker
from devtools.redis_server import RedisServer
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.sender import callback_params, send_status_callback
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
WEB_ARGS = [GUNICORN, "--config", "gunicorn.conf.py", "workers.wsgi:app"]  # as the Procfile
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
#: Scenarios whose calls make an alert, and ones that make none.
ALERTING = ("sdk-error", "ice-failure", "mic-denied", "warnings-cleared")
QUIET = ("clean",)


def stack_env(redis_url: str, simulator: SimulatorServer, *, port: int,
              slack: SlackStandIn | None = None, webhook: WebhookReceiver | None = None,
              **overrides: str) -> dict[str, str]:
    """The environment both process types get, as a platform would set it."""
    env = {
        "REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": simulator.account_sid,
        "TWILIO_AUTH_TOKEN": simulator.auth_token, "TWILIO_INSIGHTS_BASE_URL": simulator.url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "PORT": str(port),
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",  # never 0.0.0.0 in a test
        "ANALYSIS_DELAY_SECONDS": "1", "ANALYSIS_RECHECK_SECONDS": "2,2",
        "DELIVERY_RETRY_SECONDS": "1,2,5,10,30", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
    }
    if slack is not None:
        env["SLACK_WEBHOOK_URL"] = slack.url
    if webhook is not None:
        env["ALERT_WEBHOOK_URLS"] = webhook.url
        env["ALERT_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    env.update(overrides)
    return env


@dataclass
class Stack:
    """web and workers over one Redis; closes (SIGTERM, then SIGKILL) what it started."""

    redis: RedisServer
    simulator: SimulatorServer
    env: dict[str, str]
    web: Process | None = None
    workers: list[Process] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.env["PUBLIC_BASE_URL"]

    def start_web(self) -> Process:
        self.web = Process(WEB_ARGS, self.env).start()
        self.web.wait_for(self.ready, timeout=30)
        return self.web

    def start_worker(self, name: str) -> Process:
        process = worker(self.env, "--name", name).start()
        self.workers.append(process)
        process.wait_for(lambda: bool(process.events("worker_starting")), timeout=30)
        return process

    def ready(self) -> bool:
        try:
            return requests.get(self.base_url + "/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def worker_events(self, *names: str) -> list[dict[str, Any]]:
        """Log lines with one of these event names from every worker started so far."""
        return [line for w in self.workers for line in w.log_lines() if line.get("event") in names]

    def analysed(self) -> set[str]:
        """CallSids whose analysis reached a verdict (an alert or none) in some worker."""
        return {str(line.get("call_sid")) for line in
                self.worker_events("alert_created", "analysis_no_alert")}

    def close(self) -> None:
        for process in [*self.workers, *([self.web] if self.web else [])]:
            process.close()


@dataclass(frozen=True)
class Attempt:
    """One callback request as Twilio would send it, and callwatch's answer."""

    call_sid: str
    status: int  # 0: no answer (connection refused or timed out)
    at: float  # time.time()


class TwilioCallbacks:
    """Posts signed terminal callbacks; a 5xx or no answer is retried (``#rc=…&rp=5xx,ct``)."""

    def __init__(self, stack: Stack, *, retries: int = 3, retry_wait_s: float = 4.0) -> None:
        self._stack = stack
        self._url = stack.base_url + "/twilio/status-callback"
        self._retries = retries
        self._retry_wait_s = retry_wait_s
        self._session = requests.Session()
        self._lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.scenarios: dict[str, str] = {}
        self._alerting: set[str] = set()

    def call(self, scenario: str, **options: Any) -> str:
        """A call of ``scenario`` in the simulator, then its ``completed`` callback."""
        sid = self._stack.simulator.add_call(scenario, **options)
        with self._lock:
            self.scenarios[sid] = scenario
            # Fault scenarios (slow, rate-limited...) carry the events of ``events=``.
            if scenario in ALERTING or options.get("events") in ALERTING:
                self._alerting.add(sid)
        self.post(sid)
        return sid

    def post(self, sid: str) -> int:
        params = callback_params(sid, self._stack.simulator.account_sid, "completed")
        for attempt in range(self._retries + 1):
            try:
                status = send_status_callback(self._url, params, self._stack.simulator.auth_token,
                                              session=self._session).status_code
            except requests.RequestException:
                status = 0
            with self._lock:
                self.attempts.append(Attempt(sid, status, time.time()))
            if 200 <= status < 300 or 400 <= status < 500 or attempt == self._retries:
                return status
            time.sleep(self._retry_wait_s)
        return status

    def accepted(self) -> set[str]:
        with self._lock:
            return {a.call_sid for a in self.attempts if a.status == 204}

    def refused_first(self) -> set[str]:
        """Calls whose first callback was not accepted (a 503 or no answer)."""
        with self._lock:
            first: dict[str, int] = {}
            for a in self.attempts:
                first.setdefault(a.call_sid, a.status)
        return {sid for sid, status in first.items() if status != 204}

    def statuses(self) -> Counter[int]:
        with self._lock:
            return Counter(a.status for a in self.attempts)

    def expected_alerts(self) -> set[str]:
        """Accepted calls whose scenario makes an alert."""
        accepted = self.accepted()
        with self._lock:
            return self._alerting & accepted


def webhook_counts(receiver: WebhookReceiver) -> tuple[Counter[str], Counter[str]]:
    """(accepted requests per CallSid, unique webhook-ids per CallSid)."""
    requests_per_call: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}
    for delivery in receiver.accepted():
        if delivery.body.get("type") != "call.alert":
            continue  # an incident event (a storm of one error opens one)
        sid = delivery.body["data"]["call"]["call_sid"]
        requests_per_call[sid] += 1
        ids.setdefault(sid, set()).add(str(delivery.webhook_id))
    return requests_per_call, Counter({sid: len(v) for sid, v in ids.items()})


def slack_counts(slack: SlackStandIn) -> Counter[str]:
    """Slack messages shown per CallSid (what a channel would show)."""
    counts: Counter[str] = Counter()
    for message in slack.accepted():
        found = CALL_SID.search(str(message.payload.get("text", "")))
        if found:
            counts[found.group()] += 1
    return counts


def duplicates(counts: Counter[str]) -> int:
    return sum(n - 1 for n in counts.values() if n > 1)


@dataclass(frozen=True)
class Tally:
    """What a drill ends with; ``line()`` is what it prints."""

    drill: str
    callbacks_accepted: int
    alerts_expected: int
    alerts_delivered: int
    duplicates: int
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        extra = " ".join(f"{key}={value}" for key, value in self.notes.items())
        return (f"DRILL {self.drill}: callbacks accepted={self.callbacks_accepted} "
                f"alerts expected={self.alerts_expected} delivered={self.alerts_delivered} "
                f"duplicates={self.duplicates}" + (f" | {extra}" if extra else ""))


def wait_until(predicate: Any, timeout: float, what: str, *, processes: Iterable[Process] = (),
               redis_url: str | None = None) -> float:
    """Poll ``predicate`` until true; returns seconds waited. Fails naming ``what``, with the
    processes' last lines and, given ``redis_url``, where the deliveries are."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            tails = "\n".join(p.output[-3000:] for p in processes)
            where = delivery_snapshot(redis_url) if redis_url else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n"
                                 f"{where}\n{tails}")
        time.sleep(0.2)
    return time.monotonic() - started


def delivery_snapshot(redis_url: str) -> str:
    """RQ's queues and registries, the sinks' lines and slots, the paces and the scheduler
    locks, as a drill that timed out left them: where a late delivery is waiting."""
    client = redis_lib.Redis.from_url(redis_url, socket_timeout=5, decode_responses=True)
    lines = [f"delivery snapshot at {time.time():.1f}:"]
    try:
        for key in sorted(client.scan_iter("*", count=1000)):
            if not key.startswith(("rq:queue:", "rq:scheduled:", "rq:started:",
                                   "rq:scheduler-lock:", "callwatch:sink-", "callwatch:pace")):
                continue
            kind = client.type(key)
            if kind == "list":
                value: Any = [*client.lrange(key, 0, 4), f"({client.llen(key)} in all)"]
            elif kind == "zset":
                value = [*client.zrange(key, 0, 4, withscores=True), f"({client.zcard(key)} in all)"]
            elif kind == "string":
                value = client.get(key)
            else:
                value = kind
            lines.append(f"  {key} ttl={client.pttl(key)} ms: {value}")
    except redis_lib.RedisError as error:
        lines.append(f"  (Redis: {error})")
    finally:
        client.close()
    return "\n".join(lines)
