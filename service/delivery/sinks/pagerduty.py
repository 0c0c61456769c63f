"""Alerts to PagerDuty through the Events API v2: one ``trigger`` per alert.

``dedup_key`` is the alert's pager group (``grp_…``, ``pager_groups``) when routing gave
it one, so repeats of one problem are one PagerDuty incident, resolved once the group
is quiet; else the alert id. Either way a retried alert re-triggers the same PagerDuty
alert instead of paging twice. The body stays under PagerDuty's 512 KB. PagerDuty answers 202 when it took the
event, 400 when the event is invalid (permanent, with its own message), 429 when
the integration is rate limited (retried, after ``Retry-After`` when given) and 5xx
when it is in trouble (retried). The routing key is a credential: it is in the
body only, never in a log or an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from service.analysis.alert import Alert, client_json, iso
from service.analysis.headline import party
from service.delivery.incidents.content import facts, headline, sample_sids
from service.delivery.incidents.grouping import describe_group
from service.delivery.incidents.pager_groups import PagerGroup, PagerGroups
from service.delivery.sinks.base import SinkEnv, SinkSpec, SinkType, check_text
from service.delivery.sinks.fitting import PAGERDUTY_MAX_BYTES, fit_issues, json_bytes
from service.delivery.sinks.json_post import DEFAULT_TIMEOUT, Answer, post_json, raise_if_retryable
from service.delivery.sinks.slack_blocks import shorten
from service.errors import DeliveryRejected
from service.http import host_of, require_secure_url
from service.http_session import http_session

if TYPE_CHECKING:
    from service.delivery.incidents.events import IncidentEvent

#: PagerDuty's limit on ``payload.summary``.
MAX_SUMMARY = 1024
#: Issues listed in ``custom_details`` (the rest are counted).
MAX_DETAIL_ISSUES = 50


#: PagerDuty's limit on ``dedup_key``.
MAX_DEDUP_KEY = 255


def pagerduty_event(alert: Alert, routing_key: str, *, dedup_key: str | None = None) -> dict[str, Any]:
    """The Events API v2 ``trigger`` for one alert (pure), within PagerDuty's 512 KB: issues
    that do not fit are left out and counted in ``more_issues``. ``dedup_key``: the alert's
    pager group (``grp_…``), else the alert id."""
    fitted = fit_issues(alert, lambda a: len(json_bytes(_trigger(a, routing_key, dedup_key))),
                        PAGERDUTY_MAX_BYTES)
    return _trigger(fitted, routing_key, dedup_key)


def _trigger(alert: Alert, routing_key: str, dedup_key: str | None) -> dict[str, Any]:
    call = alert.call
    issues = [issue.to_json() for issue in alert.issues[:MAX_DETAIL_ISSUES]]
    more = len(alert.issues) - len(issues) + alert.truncated_issues
    summary = f"callwatch {alert.severity}: {alert.summary}"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": (dedup_key or alert.alert_id)[:MAX_DEDUP_KEY],
        "client": "callwatch",
        "payload": {
            "summary": shorten(summary, MAX_SUMMARY),
            "severity": "error" if alert.severity == "error" else "warning",
            "source": "callwatch",
            "component": call.call_sid,
            "group": call.account_sid,
            "class": alert.issues[0].key if alert.issues else "call",
            "timestamp": iso(alert.created_at),
            "custom_details": {
                "alert_id": alert.alert_id,
                "call": {"call_sid": call.call_sid, "status": call.status,
                         "direction": call.direction, "from": party(call.from_),
                         "to": party(call.to),
                         "duration_s": call.duration_s},
                "issues": issues,
                "more_issues": more,
                "client": client_json(alert.client),
            },
        },
    }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PagerDutySink:
    """Triggers one PagerDuty alert per callwatch alert."""

    pace_s: float | None = None
    kind: str = "pager"

    def __init__(self, routing_key: str, *, name: str, url: str,
                 session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 clock: Callable[[], datetime] = _utc_now,
                 groups: PagerGroups | None = None) -> None:
        self.name = name
        #: Where a delivered grouped trigger restarts its group's quiet time (None: nowhere).
        self._groups = groups
        self._routing_key = routing_key
        self._url = require_secure_url(url, "PAGERDUTY_EVENTS_URL")
        self._session = session or http_session(os.environ)
        self._timeout = timeout
        self._clock = clock

    def __repr__(self) -> str:
        return f"PagerDutySink(name={self.name!r}, host={host_of(self._url)!r})"

    def send(self, alert: Alert) -> None:
        """One ``trigger``; 2xx is delivered, anything else raises."""
        self.send_event(pagerduty_event(alert, self._routing_key))

    def send_grouped(self, alert: Alert, group: PagerGroup) -> None:
        """One ``trigger`` on the alert's pager group (``grp_…``): repeats of one problem
        add to one PagerDuty incident (``service.delivery.incidents.pager_groups``).

        Once PagerDuty took it, the group's quiet time starts again from now: a trigger
        that arrives late (retries, pacing) is still followed by a resolve, even when the
        group was resolved and forgotten while it waited."""
        self.send_event(pagerduty_event(alert, self._routing_key, dedup_key=group.dedup_key))
        if self._groups is not None:
            self._groups.touch(self.name, group, self._clock().timestamp())

    def resolve(self, dedup_key: str) -> None:
        """``resolve`` a pager group's PagerDuty incident, once it has been quiet."""
        self.send_event({"routing_key": self._routing_key, "event_action": "resolve",
                         "dedup_key": dedup_key})

    def send_incident(self, event: IncidentEvent) -> None:
        """``trigger`` (opened, updated) or ``resolve`` with the incident id as ``dedup_key``."""
        self.send_event(pagerduty_incident_event(event, self._routing_key))

    def send_event(self, event: dict[str, Any]) -> None:
        """POST one Events API v2 event (a trigger, or an incident's resolve)."""
        answer = post_json(self._session, self._url, event, who="PagerDuty", timeout=self._timeout)
        self._check(answer)

    def _check(self, answer: Answer) -> None:
        status = answer.status
        if 200 <= status < 300:
            return
        raise_if_retryable(answer, "PagerDuty", self._clock())
        body = answer.json() or {}
        message = str(body.get("message") or "")[:200]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            message += ": " + "; ".join(str(e)[:200] for e in errors[:3])
        if 300 <= status < 400:
            raise DeliveryRejected(f"PagerDuty answered {status} (a redirect, not followed): "
                                   "check PAGERDUTY_EVENTS_URL", reason="redirect", status=status)
        reason = "invalid_event" if status == 400 else f"http_{status}"
        raise DeliveryRejected(f"PagerDuty refused the event with {status}"
                               + (f": {message}" if message else ""), reason=reason, status=status)


def _build(spec: SinkSpec, env: SinkEnv) -> PagerDutySink:
    return PagerDutySink(spec.options["routing_key"], name=spec.name,
                         url=env.settings.pagerduty_events_url, session=env.session,
                         clock=env.clock,
                         groups=PagerGroups(env.redis) if env.redis is not None else None)


SINK_TYPE = SinkType("pagerduty", _build, required=("routing_key",), secrets=frozenset({"routing_key"}),
                     check=lambda options, environ: check_text(options, "routing_key"))


def pagerduty_incident_event(event: IncidentEvent, routing_key: str) -> dict[str, Any]:
    """An Events API v2 event: ``trigger`` (opened, updated) or ``resolve`` on the incident id."""
    action = "resolve" if event.event == "resolved" else "trigger"
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                            "dedup_key": event.incident_id}
    if action == "trigger":
        body["payload"] = {
            "summary": shorten(f"callwatch: {headline(event)}", MAX_SUMMARY),
            "source": "callwatch",
            "severity": "error",
            "timestamp": event.timestamp,
            "component": str(event.data.get("route")),
            "group": describe_group(event.data.get("group") or {})[:255],
            "class": str(event.data.get("trigger")),
            "custom_details": {label: value for label, value in facts(event)}
            | {"sample_call_sids": sample_sids(event), "incident_id": event.incident_id},
        }
    return body
