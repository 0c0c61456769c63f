"""Stand-ins for the two kinds of alert receiver: a Slack incoming webhook and a
Standard Webhooks endpoint. Real HTTP servers on loopback, for tests and ``make run``.

``SlackStandIn`` answers like Slack: 200 ``ok``; 400 ``invalid_payload`` for a
message Slack would refuse (no ``text`` or ``blocks``, over 50 blocks, a header
over 150 characters, a section over 3000); 429 ``rate_limited`` with
``Retry-After: 1`` when two messages come closer than ``min_interval_s``.
``WebhookReceiver`` checks each request's signature with the ``standardwebhooks``
reference library (not callwatch's own code) and answers 400 when it fails.

With a ``signing_secret`` the Slack stand-in also plays Slack's interactivity:
``click(actions_url, action_id, value)`` posts a signed ``block_actions`` payload (as
Slack does when a person clicks a button) to callwatch's ``POST /slack/actions`` and
returns callwatch's answer; the payload's ``response_url`` points back here, and the
updates callwatch sends there are kept in ``responses``. ``curl_click`` prints the
same click as a ``curl`` line.

Both record every request they get, can be scripted (``.script([(503, "busy", {}),
...])`` answers the next requests in turn, then back to normal), can hold each
answer for ``hold_s`` seconds (so a crash test can kill the sender mid-request),
and print what they get when ``echo=True``. Run both with
``python -m devtools.standins --slack-port 8020 --webhook-port 8021
--secret whsec_...``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shlex
import signal
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Self

import requests
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.wrappers import Request, Response

from devtools.background_server import BackgroundServer

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
SLACK_PATH = "/services/T000/B000/XXXX"
RESPONSE_PATH = "/actions/response/"

#: One programmed answer: status, body and (optionally) headers.
Scripted = tuple[int, str] | tuple[int, str, Mapping[str, str]]


@dataclass(frozen=True)
class SlackMessage:
    """One request the Slack stand-in received, and how it answered."""

    path: str
    payload: Any
    status: int
    received_at: float  # time.time()

    @property
    def accepted(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class WebhookDelivery:
    """One request the webhook receiver received, and how it answered."""

    name: str
    webhook_id: str | None
    headers: dict[str, str]
    body: Any
    verified: bool
    status: int
    received_at: float  # time.time()
    raw: bytes = field(repr=False, default=b"")

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class _StandIn:
    """A threaded werkzeug server in a daemon thread, with scripted answers."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", hold_s: float = 0.0,
                 echo: bool = False) -> None:
        self.hold_s = hold_s
        self.echo = echo
        self._lock = threading.Lock()
        self._script: deque[tuple[int, str, dict[str, str]]] = deque()
        self._http = BackgroundServer(self._wsgi, host, port, name=type(self).__name__)

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def base_url(self) -> str:
        return self._http.url

    def start(self) -> Self:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, answers: Iterable[Scripted]) -> None:
        """Answer the next requests with these, one each, then behave normally."""
        with self._lock:
            for answer in answers:
                status, body, *rest = answer
                self._script.append((status, body, dict(rest[0]) if rest else {}))

    def _next_scripted(self) -> tuple[int, str, dict[str, str]] | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        status, body, headers = self._handle(request)
        if self.hold_s > 0:
            time.sleep(self.hold_s)
        # a scripted Content-Type (a proxy's page, say) is sent as given
        response = Response(body, status=status,
                            headers={"Content-Type": "text/plain; charset=utf-8", **headers})
        return response(environ, start_response)

    def _handle(self, request: Request) -> tuple[int, str, dict[str, str]]:
        raise NotImplementedError


@dataclass(frozen=True)
class ClickAnswer:
    """callwatch's answer to one click the stand-in posted."""

    status: int
    body: Any


class SlackStandIn(_StandIn):
    """Speaks like a Slack incoming webhook at ``.url`` (and, with a signing secret, like
    Slack's interactivity: see ``click``)."""

    def __init__(self, port: int = 0, *, min_interval_s: float = 1.0, hold_s: float = 0.0,
                 echo: bool = False, host: str = "127.0.0.1",
                 signing_secret: str | None = None) -> None:
        super().__init__(port, host=host, hold_s=hold_s, echo=echo)
        self.min_interval_s = min_interval_s
        self.signing_secret = signing_secret
        self.messages: list[SlackMessage] = []
        #: What callwatch posted to the clicks' ``response_url``s, in order.
        self.responses: list[SlackMessage] = []
        self._last_accepted: float | None = None
        self._clicks = 0

    def interaction(self, action_id: str, value: str, *, user: str = "bob",
                    message: Mapping[str, Any] | None = None,
                    timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers Slack posts when ``user`` clicks the button ``action_id``
        (with ``value``) on ``message`` (default: the last message accepted)."""
        if not self.signing_secret:
            raise RuntimeError("the Slack stand-in needs a signing_secret to sign clicks")
        with self._lock:
            self._clicks += 1
            n = self._clicks
            accepted = [m for m in self.messages if m.accepted]
        if message is None and accepted and isinstance(accepted[-1].payload, dict):
            message = accepted[-1].payload
        payload = {
            "type": "block_actions", "api_app_id": "A000", "trigger_id": f"1.2.{n}",
            "user": {"id": f"U{abs(hash(user)) % 10**8:08d}", "username": user, "name": user},
            "team": {"id": "T000", "domain": "example"}, "container": {"type": "message"},
            "response_url": f"{self.base_url}{RESPONSE_PATH}{n}",
            "message": dict(message or {}),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "callwatch_actions",
                         "value": value, "action_ts": f"{time.time():.6f}.{n}"}],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(self.signing_secret).generate_signature(
            timestamp=stamp, body=body) or ""
        return body, {"Content-Type": "application/x-www-form-urlencoded",
                      "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}

    def click(self, actions_url: str, action_id: str, value: str, *, user: str = "bob",
              message: Mapping[str, Any] | None = None, timeout_s: float = 10.0) -> ClickAnswer:
        """Post a signed click to callwatch's ``actions_url`` and return its answer."""
        body, headers = self.interaction(action_id, value, user=user, message=message)
        answer = requests.post(actions_url, data=body, headers=headers, timeout=timeout_s,
                               allow_redirects=False)
        return ClickAnswer(answer.status_code, _json(answer.content[:65536]))

    def curl_click(self, actions_url: str, action_id: str, value: str, *,
                   user: str = "bob", message: Mapping[str, Any] | None = None) -> str:
        """The same click as a ``curl`` line a person can paste (valid for 5 minutes)."""
        body, headers = self.interaction(action_id, value, user=user, message=message)
        parts = ["curl", "-sS", "-X", "POST", actions_url]
        for name, header in headers.items():
            parts += ["-H", f"{name}: {header}"]
        parts += ["--data-binary", body.decode()]
        return " ".join(shlex.quote(part) for part in parts)

    @property
    def url(self) -> str:
        return self.base_url + SLACK_PATH

    def accepted(self) -> list[SlackMessage]:
        """Messages answered 200 ``ok``: what a Slack channel would show."""
        with self._lock:
            return [m for m in self.messages if m.accepted]

    def _handle(self, request: Request) -> tuple[int, str, dict[str, str]]:
        if request.method != "POST":
            return 405, "invalid_method", {}
        if request.path.startswith(RESPONSE_PATH):
            update = _json(request.get_data())
            with self._lock:
                self.responses.append(SlackMessage(request.path, update, 200, time.time()))
            if self.echo:
                _print_slack(update, 200, "Slack message update")
            return 200, "ok", {}
        if not request.path.startswith("/services/"):
            return 404, "no_service", {}
        payload = _json(request.get_data())
        answer = self._next_scripted() or self._answer(payload)
        with self._lock:
            self.messages.append(SlackMessage(request.path, payload, answer[0], time.time()))
        if self.echo:
            _print_slack(payload, answer[0])
        return answer

    def _answer(self, payload: Any) -> tuple[int, str, dict[str, str]]:
        problem = slack_payload_problem(payload)
        if problem:
            return 400, "invalid_payload" if problem != "no_text" else "no_text", {}
        with self._lock:
            now = time.monotonic()
            last = self._last_accepted
            if self.min_interval_s > 0 and last is not None and now - last < self.min_interval_s:
                return 429, "rate_limited", {"Retry-After": "1"}
            self._last_accepted = now
        return 200, "ok", {}


def slack_payload_problem(payload: Any) -> str | None:
    """Why Slack would refuse this message (``no_text``, ``too_many_blocks``...), or None."""
    if not isinstance(payload, dict):
        return "not_json"
    blocks = payload.get("blocks")
    if not payload.get("text") and not blocks:
        return "no_text"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "too_many_blocks"
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return "invalid_block"
        text = block.get("text") or {}
        length = len(text.get("text", "")) if isinstance(text, dict) else 0
        if block["type"] == "header" and length > MAX_HEADER:
            return "header_too_long"
        if block["type"] == "section" and length > MAX_SECTION:
            return "section_too_long"
    return None


class WebhookReceiver(_StandIn):
    """A Standard Webhooks endpoint at ``.url`` (``/hooks/<name>``) that checks signatures."""

    def __init__(self, secret: str, port: int = 0, *, hold_s: float = 0.0, echo: bool = False,
                 host: str = "127.0.0.1") -> None:
        super().__init__(port, host=host, hold_s=hold_s, echo=echo)
        self.secret = secret
        self._webhook = Webhook(secret)
        self.deliveries: list[WebhookDelivery] = []

    @property
    def url(self) -> str:
        return self.base_url + "/hooks/callwatch"

    def url_for(self, name: str) -> str:
        return f"{self.base_url}/hooks/{name}"

    def accepted(self) -> list[WebhookDelivery]:
        """Verified deliveries answered 2xx."""
        with self._lock:
            return [d for d in self.deliveries if d.verified and d.accepted]

    def unique_ids(self) -> set[str]:
        """``webhook-id``s of accepted deliveries: what a de-duplicating receiver keeps."""
        return {d.webhook_id for d in self.accepted() if d.webhook_id}

    def _handle(self, request: Request) -> tuple[int, str, dict[str, str]]:
        if request.method != "POST":
            return 405, "method not allowed", {}
        if not request.path.startswith("/hooks/"):
            return 404, "not found", {}
        raw = request.get_data()
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            self._webhook.verify(raw, headers, json_parse=False)
            verified = True
        except (WebhookVerificationError, ValueError):
            verified = False
        answer = self._next_scripted() or (
            (200, "ok", {}) if verified else (400, "invalid signature", {}))
        delivery = WebhookDelivery(
            name=request.path.removeprefix("/hooks/"), webhook_id=headers.get("webhook-id"),
            headers=headers, body=_json(raw), verified=verified, status=answer[0],
            received_at=time.time(), raw=raw)
        with self._lock:
            self.deliveries.append(delivery)
        if self.echo:
            _print_webhook(delivery)
        return answer


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _print_slack(payload: Any, status: int, what: str = "Slack message") -> None:
    lines = [f"── {what} ({status}) " + "─" * 40]
    if isinstance(payload, dict):
        lines.append(html.unescape(str(payload.get("text", ""))))
        for block in payload.get("blocks") or []:
            if block.get("type") == "actions":
                lines.append("  " + "  ".join(f"[{(e.get('text') or {}).get('text', '?')}]"
                                              for e in block.get("elements") or []))
                continue
            texts: Sequence[Any] = [block.get("text")] if block.get("text") else \
                block.get("elements") or []
            for text in texts:
                if isinstance(text, dict):
                    body = html.unescape(str(text.get("text", "")))
                    lines.extend("  " + line for line in body.splitlines())
    print("\n".join(lines), flush=True)


def _print_webhook(delivery: WebhookDelivery) -> None:
    state = "verified" if delivery.verified else "SIGNATURE INVALID"
    data = delivery.body.get("data", {}) if isinstance(delivery.body, dict) else {}
    print(f"── webhook {delivery.webhook_id} to /hooks/{delivery.name} ({state}, "
          f"{delivery.status}) ──\n  {data.get('severity')}: {data.get('summary')}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-ins until interrupted, printing what they receive."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slack-port", type=int, help="serve the Slack stand-in on this port")
    parser.add_argument("--webhook-port", type=int, help="serve the webhook receiver here")
    parser.add_argument("--secret", default=os.environ.get("ALERT_WEBHOOK_SECRET"),
                        help="whsec_ secret the receiver verifies (default $ALERT_WEBHOOK_SECRET)")
    parser.add_argument("--slack-interval", type=float, default=1.0,
                        help="Slack's rate limit: minimum seconds between messages (0: off)")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to hold each answer")
    parser.add_argument("--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET"),
                        help="sign button clicks with this (default $SLACK_SIGNING_SECRET)")
    args = parser.parse_args(argv)
    if args.slack_port is None and args.webhook_port is None:
        parser.error("give --slack-port, --webhook-port or both")
    if args.webhook_port is not None and not args.secret:
        parser.error("--webhook-port needs --secret (or ALERT_WEBHOOK_SECRET)")
    running: list[_StandIn] = []
    if args.slack_port is not None:
        slack = SlackStandIn(args.slack_port, min_interval_s=args.slack_interval,
                             hold_s=args.hold, echo=True,
                             signing_secret=args.signing_secret).start()
        running.append(slack)
        print(f"Slack stand-in: SLACK_WEBHOOK_URL={slack.url}", flush=True)
    if args.webhook_port is not None:
        hooks = WebhookReceiver(args.secret, args.webhook_port, hold_s=args.hold,
                                echo=True).start()
        running.append(hooks)
        print(f"Webhook receiver: ALERT_WEBHOOK_URLS={hooks.url}", flush=True)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not done.wait(0.5):
        pass
    for server in running:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
