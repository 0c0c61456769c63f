"""A PagerDuty Events API v2 stand-in on loopback, for tests and ``make run``.

Answers like ``https://events.pagerduty.com/v2/enqueue``: 202 with ``{"status":
"success", "dedup_key": ...}`` for a valid event; 400 ``invalid event`` with
PagerDuty's message and the list of errors for an invalid one. It records every
request, can be scripted (``.script([(429, "{}", {"Retry-After": "2"})])``), can
hold each answer for ``hold_s`` (so a crash test can kill the sender mid-request)
and prints what it gets when ``echo=True``. ``.url`` is a ``PAGERDUTY_EVENTS_URL``.
Run it alone with ``python -m devtools.pagerduty_standin --port 8022``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from devtools.background_server import serve_until_interrupted
from devtools.standins import _json, _StandIn

PATH = "/v2/enqueue"
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
#: PagerDuty refuses an event over 512 KB with a 400 (the page is lost).
MAX_BYTES = 512 * 1024


@dataclass(frozen=True)
class PagerDutyEvent:
    """One request the stand-in received, and how it answered."""

    body: Any
    status: int
    received_at: float
    #: Bytes of the request body.
    size: int = 0

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def dedup_key(self) -> str | None:
        return self.body.get("dedup_key") if isinstance(self.body, dict) else None

    @property
    def action(self) -> str | None:
        return self.body.get("event_action") if isinstance(self.body, dict) else None


def event_problems(body: Any) -> list[str]:
    """What PagerDuty would list in ``errors`` for this event (empty: valid)."""
    if not isinstance(body, dict):
        return ["Event object is not JSON"]
    problems = []
    if not isinstance(body.get("routing_key"), str) or not body.get("routing_key"):
        problems.append("'routing_key' is missing or blank")
    if body.get("event_action") not in ACTIONS:
        problems.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    if body.get("event_action") in ("acknowledge", "resolve") and not body.get("dedup_key"):
        problems.append("'dedup_key' is missing or blank")
    if len(str(body.get("dedup_key") or "")) > 255:
        problems.append("'dedup_key' is longer than 255 characters")
    if body.get("event_action") == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "'payload' is missing or not an object"]
        for key in ("summary", "source"):
            if not isinstance(payload.get(key), str) or not payload.get(key):
                problems.append(f"'payload.{key}' is missing or blank")
        if payload.get("severity") not in SEVERITIES:
            problems.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
        if len(str(payload.get("summary", ""))) > 1024:
            problems.append("'payload.summary' is longer than 1024 characters")
    return problems


class PagerDutyStandIn(_StandIn):
    """Speaks like PagerDuty's Events API v2 at ``.url``."""

    def __init__(self, port: int = 0, *, hold_s: float = 0.0, echo: bool = False,
                 host: str = "127.0.0.1") -> None:
        super().__init__(port, host=host, hold_s=hold_s, echo=echo)
        self.events: list[PagerDutyEvent] = []

    @property
    def url(self) -> str:
        return self.base_url + PATH

    def accepted(self) -> list[PagerDutyEvent]:
        """Events answered 202: what PagerDuty would have taken."""
        with self._lock:
            return [e for e in self.events if e.accepted]

    def triggers(self) -> dict[str, int]:
        """Accepted ``trigger`` events by ``dedup_key``."""
        counts: dict[str, int] = {}
        for event in self.accepted():
            if event.action == "trigger" and event.dedup_key:
                counts[event.dedup_key] = counts.get(event.dedup_key, 0) + 1
        return counts

    def _handle(self, request: Request) -> tuple[int, str, dict[str, str]]:
        if request.method != "POST":
            return 405, "", {}
        if request.path != PATH:
            return 404, json.dumps({"status": "not found"}), {}
        raw = request.get_data()
        body = _json(raw)
        answer = self._next_scripted() or (
            (400, json.dumps({"status": "invalid event", "message": "Event object is too large",
                              "errors": [f"event is {len(raw)} bytes, over {MAX_BYTES}"]}), {})
            if len(raw) > MAX_BYTES else self._answer(body))
        with self._lock:
            self.events.append(PagerDutyEvent(body, answer[0], time.time(), len(raw)))
        if self.echo:
            _print_event(body, answer[0])
        return answer

    def _answer(self, body: Any) -> tuple[int, str, dict[str, str]]:
        json_type = {"Content-Type": "application/json"}
        problems = event_problems(body)
        if problems:
            return 400, json.dumps({"status": "invalid event", "message": "Event object is invalid",
                                    "errors": problems}), json_type
        return 202, json.dumps({"status": "success", "message": "Event processed",
                                "dedup_key": body.get("dedup_key")}), json_type


def _print_event(body: Any, status: int) -> None:
    payload = body.get("payload", {}) if isinstance(body, dict) else {}
    action = body.get("event_action") if isinstance(body, dict) else None
    print(f"── PagerDuty {action} ({status}) dedup_key={body.get('dedup_key') if body else None} ──\n"
          f"  [{payload.get('severity')}] {payload.get('summary')}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the stand-in until interrupted, printing every event."""
    return serve_until_interrupted(__doc__ or "", 8022, argv,
                                   lambda port: PagerDutyStandIn(port, echo=True),
                                   lambda server: f"PagerDuty stand-in: PAGERDUTY_EVENTS_URL={server.url}")


if __name__ == "__main__":
    raise SystemExit(main())
