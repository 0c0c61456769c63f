"""Alerts to Microsoft Teams through a Workflows webhook: one Adaptive Card per alert.

The body is ``{"type": "message", "attachments": [<one Adaptive Card>]}``, as the
"Post to a channel when a webhook request is received" workflow expects. Teams
refuses messages over about 28 KB, so the card is kept under ``MAX_CARD_BYTES``:
long descriptions are shortened and issues that do not fit are counted in an
"and N more" line. Every text a caller or Twilio controls goes through
``escaping.teams``: it never makes a link, a heading or emphasis. The workflow
answers 202 when it took the message; 429 (retried, after ``Retry-After`` when
given), 408 and 5xx are retried; any other answer is permanent. The URL carries
the workflow's signature: only its host is ever logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from service.analysis.alert import Alert, Issue, client_json, count_line
from service.analysis.headline import headline as alert_headline
from service.analysis.headline import party
from service.delivery.digests.content import parts as digest_parts
from service.delivery.digests.content import title as digest_title
from service.delivery.digests.store import Digest
from service.delivery.incidents.content import SEE_THE_REST, facts, headline, sample_sids
from service.delivery.sinks.base import SinkEnv, SinkSpec, SinkType, check_digest, check_url
from service.delivery.sinks.escaping import teams as md
from service.delivery.sinks.fitting import (
    TEAMS_MAX_BYTES,
    fit_issues,
    fit_texts,
    json_bytes,
    keep_issues,
)
from service.delivery.sinks.json_post import DEFAULT_TIMEOUT, Answer, post_json, raise_if_retryable
from service.errors import DeliveryRejected
from service.http import host_of, require_secure_url
from service.http_session import http_session

if TYPE_CHECKING:
    from service.delivery.incidents.events import IncidentEvent

MAX_CARD_BYTES = TEAMS_MAX_BYTES
MAX_DESCRIPTION = 400
#: A client fact's longest value (the texts are capped at 1,000 characters; nine of
#: them in 4-byte characters would not fit a card).
MAX_FACT = 300
_COLOR = {"error": "Attention", "warning": "Warning"}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _issue_block(issue: Issue) -> dict[str, Any]:
    text = f"**\\[{md(issue.severity)}\\] {md(issue.key)}** x{issue.count}"
    if issue.duration_s is not None:
        text += f", raised {issue.duration_s:g} s{' (cleared)' if issue.cleared else ''}"
    if issue.description:
        text += f"  \n{md(_shorten(issue.description, MAX_DESCRIPTION))}"
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
    return [{"title": title, "value": md(_shorten(value, MAX_FACT))} for title, value in facts if value]


def teams_card(alert: Alert, issues: int | None = None) -> dict[str, Any]:
    """The Adaptive Card for ``alert`` with its first ``issues`` issues (all when None)."""
    call, every = alert.call, alert.issues
    if issues is not None:
        alert = keep_issues(alert, issues)
    shown = alert.issues
    more = alert.truncated_issues
    call_facts = [("Call", call.call_sid), ("Status", call.status), ("Direction", call.direction),
                  ("From", party(call.from_)), ("To", party(call.to)),
                  ("Duration", f"{call.duration_s} s" if call.duration_s is not None else None)]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": True,
         "color": _COLOR.get(alert.severity, "Warning"),
         "text": md(alert_headline(call, every))},
        {"type": "TextBlock", "text": md(f"callwatch {alert.severity}: {count_line(call, every)}"),
         "wrap": True},
        {"type": "FactSet", "facts": [{"title": t, "value": md(str(v))} for t, v in call_facts if v]},
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
    return _card(body, full_width=True)


def _card(body: list[dict[str, Any]], *, full_width: bool = False) -> dict[str, Any]:
    """An Adaptive Card (1.4) holding ``body``; ``full_width``: as wide as the channel."""
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard", "version": "1.4"}
    if full_width:
        card["msteams"] = {"width": "Full"}
    return {**card, "body": body}


def _message(card: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": card}]}


def teams_message(alert: Alert) -> dict[str, Any]:
    """The Workflows webhook body for ``alert`` (pure), within ``MAX_CARD_BYTES``: issues
    that do not fit are counted in an "…and N more issues" line."""
    fitted = fit_issues(alert, lambda a: len(json_bytes(_message(teams_card(alert, len(a.issues))))),
                        MAX_CARD_BYTES)
    return _message(teams_card(alert, len(fitted.issues)))


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
        self._session = session or http_session(os.environ)
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

    def send_digest(self, digest: Digest) -> None:
        """Post a period's digest card."""
        self.post(teams_digest_card(digest))

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


SINK_TYPE = SinkType("teams", _build, required=("url",), optional=("digest",),
                     secrets=frozenset({"url"}),
                     check=lambda options, environ: check_digest(check_url(options)))


def teams_incident_card(event: IncidentEvent) -> dict[str, Any]:
    """A Teams Workflows ``message`` with one Adaptive Card (version 1.4), within
    ``MAX_CARD_BYTES`` as sent: long texts (the group's values) are shortened to fit."""
    return fit_texts(lambda length: _incident_card(event, length), MAX_CARD_BYTES)


def _incident_card(event: IncidentEvent, length: int) -> dict[str, Any]:
    sids = sample_sids(event)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": md(_shorten(headline(event), length)), "weight": "Bolder",
         "size": "Medium", "wrap": True},
        {"type": "FactSet", "facts": [{"title": label, "value": md(_shorten(value, length))}
                                      for label, value in facts(event)]},
        {"type": "TextBlock", "text": f"Sample calls ({len(sids)} of {event.data.get('calls')})",
         "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": "\n".join(sids) or "none yet", "fontType": "Monospace",
         "wrap": True},
        {"type": "TextBlock", "text": f"Incident {event.incident_id} · {SEE_THE_REST.replace('`', '')}",
         "isSubtle": True, "size": "Small", "wrap": True},
    ]
    return _message(_card(body))


def teams_digest_card(digest: Digest) -> dict[str, Any]:
    """A digest as one Adaptive Card (1.4) within ``MAX_CARD_BYTES`` as sent: each part is
    shortened (after escaping is counted) until the card fits."""
    return fit_texts(lambda length: _digest_card(digest, length), MAX_CARD_BYTES)


def _digest_card(digest: Digest, length: int) -> dict[str, Any]:
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": _shorten(digest_title(digest), length),
                                   "weight": "Bolder", "size": "Medium", "wrap": True}]
    for label, value in digest_parts(digest):
        body += [{"type": "TextBlock", "text": label, "weight": "Bolder", "wrap": True},
                 {"type": "TextBlock", "text": md(_shorten(value, length)), "wrap": True}]
    return _message(_card(body))
