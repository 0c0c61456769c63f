"""Alerts to Microsoft Teams through a Workflows webhook: one Adaptive Card per alert.

The body is ``{"type": "message", "attachments": [<one Adaptive Card>]}``, as the
"Post to a channel when a webhook request is received" workflow expects. Teams
refuses messages over about 28 KB, so the card is kept under ``MAX_CARD_BYTES``:
long descriptions are shortened and issues that do not fit are counted in an
"and N more" line. The workflow answers 202 when it took the message; 429
(retried, after ``Retry-After`` when given), 408 and 5xx are retried; any other
answer is permanent. The URL carries the workflow's signature: only its host is
ever logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from service.analysis.alert import Alert, Issue, client_json
from service.delivery.incidents.content import SEE_THE_REST, facts, headline, sample_sids
from service.delivery.sinks.base import SinkEnv, SinkSpec, SinkType, check_url
from service.delivery.sinks.json_post import DEFAULT_TIMEOUT, Answer, post_json, raise_if_retryable
from service.errors import DeliveryRejected
from service.http import host_of, require_secure_url

if TYPE_CHECKING:
    from service.delivery.incidents.events import IncidentEvent

MAX_CARD_BYTES = 27_000
MAX_DESCRIPTION = 400
_COLOR = {"error": "Attention", "warning": "Warning"}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _issue_block(issue: Issue) -> dict[str, Any]:
    text = f"**[{issue.severity}] {issue.key}** x{issue.count}"
    if issue.duration_s is not None:
        text += f", raised {issue.duration_s:g} s{' (cleared)' if issue.cleared else ''}"
    if issue.description:
        text += f"  \n{_shorten(issue.description, MAX_DESCRIPTION)}"
    return {"type": "TextBlock", "text": text, "wrap": True, "spacing": "Small"}


def _client_facts(alert: Alert) -> list[dict[str, str]]:
    data = client_json(alert.client)
    if data is None:
        return []
    sdk, os_, device, where = data["sdk"], data["os"], data["device"], data["location"]
    facts = [
        ("SDK", " ".join(filter(None, (sdk["type"], sdk["version"], sdk["platform"])))),
        ("OS", " ".join(filter(None, (os_["name"], os_["version"])))),
        ("Device", " ".join(filter(None, (device["vendor"], device["model"])))),
        ("Location", " ".join(filter(None, (where["city"], where["country_code"])))),
    ]
    return [{"title": title, "value": value} for title, value in facts if value]


def teams_card(alert: Alert, issues: int | None = None) -> dict[str, Any]:
    """The Adaptive Card for ``alert`` with its first ``issues`` issues (all when None)."""
    call = alert.call
    shown = alert.issues if issues is None else alert.issues[:issues]
    more = len(alert.issues) - len(shown) + alert.truncated_issues
    call_facts = [("Call", call.call_sid), ("Status", call.status), ("Direction", call.direction),
                  ("From", call.from_), ("To", call.to),
                  ("Duration", f"{call.duration_s} s" if call.duration_s is not None else None)]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": True,
         "color": _COLOR.get(alert.severity, "Warning"),
         "text": f"callwatch {alert.severity} on {call.call_sid}"},
        {"type": "TextBlock", "text": alert.summary, "wrap": True},
        {"type": "FactSet", "facts": [{"title": t, "value": str(v)} for t, v in call_facts if v]},
        {"type": "TextBlock", "text": "Issues", "weight": "Bolder", "spacing": "Medium"},
        *(_issue_block(issue) for issue in shown),
    ]
    if more:
        body.append({"type": "TextBlock", "text": f"…and {more} more issues", "isSubtle": True,
                     "wrap": True})
    client = _client_facts(alert)
    if client:
        body += [{"type": "TextBlock", "text": "Client", "weight": "Bolder", "spacing": "Medium"},
                 {"type": "FactSet", "facts": client}]
    body.append({"type": "TextBlock", "text": f"alert {alert.alert_id}", "isSubtle": True,
                 "size": "Small", "wrap": True})
    return {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4", "msteams": {"width": "Full"}, "body": body}


def teams_message(alert: Alert) -> dict[str, Any]:
    """The Workflows webhook body for ``alert`` (pure), within ``MAX_CARD_BYTES``."""
    count = len(alert.issues)
    while True:
        message = {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
            "content": teams_card(alert, count)}]}
        if count == 0 or len(json.dumps(message, ensure_ascii=False).encode()) <= MAX_CARD_BYTES:
            return message
        count = count // 2 if count > 8 else count - 1


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TeamsSink:
    """Posts one Adaptive Card per alert to a Teams Workflows webhook."""

    pace_s: float | None = None
    kind: str = "chat"

    def __init__(self, url: str, *, name: str, session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.name = name
        self._url = require_secure_url(url, f"sinks.{name}.url")
        self.host = host_of(url)
        self._session = session or requests.Session()
        self._timeout = timeout
        self._clock = clock

    def __repr__(self) -> str:
        return f"TeamsSink(name={self.name!r}, host={self.host!r})"

    def send(self, alert: Alert) -> None:
        """Post the alert's card; 2xx is delivered, anything else raises."""
        self.post(teams_message(alert))

    def send_incident(self, event: IncidentEvent) -> None:
        """Post the incident event's card."""
        self.post(teams_incident_card(event))

    def post(self, message: dict[str, Any]) -> None:
        """POST one Workflows message (an alert's card, or an incident's)."""
        self._check(post_json(self._session, self._url, message, who="Teams", timeout=self._timeout))

    def _check(self, answer: Answer) -> None:
        status = answer.status
        if 200 <= status < 300:
            return
        raise_if_retryable(answer, "Teams", self._clock())
        if 300 <= status < 400:
            raise DeliveryRejected(f"Teams answered {status} (a redirect, not followed): "
                                   "configure the workflow's URL", reason="redirect", status=status)
        error = answer.json() or {}
        inner = error.get("error")
        detail: dict[str, Any] = inner if isinstance(inner, dict) else error
        message = str(detail.get("message") or detail.get("code") or "")[:200]
        raise DeliveryRejected(f"Teams refused the message with {status}"
                               + (f": {message}" if message else ""),
                               reason=f"http_{status}", status=status)


def _build(spec: SinkSpec, env: SinkEnv) -> TeamsSink:
    return TeamsSink(spec.options["url"], name=spec.name, session=env.session, clock=env.clock)


SINK_TYPE = SinkType("teams", _build, required=("url",), secrets=frozenset({"url"}),
                     check=lambda options, environ: check_url(options))


def teams_incident_card(event: IncidentEvent) -> dict[str, Any]:
    """A Teams Workflows ``message`` with one Adaptive Card (version 1.4)."""
    sids = sample_sids(event)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": headline(event), "weight": "Bolder", "size": "Medium",
         "wrap": True},
        {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in facts(event)]},
        {"type": "TextBlock", "text": f"Sample calls ({len(sids)} of {event.data.get('calls')})",
         "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": "\n".join(sids) or "none yet", "fontType": "Monospace",
         "wrap": True},
        {"type": "TextBlock", "text": f"Incident {event.incident_id} · {SEE_THE_REST.replace('`', '')}",
         "isSubtle": True, "size": "Small", "wrap": True},
    ]
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
