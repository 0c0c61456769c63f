"""Alerts to a Slack incoming webhook: one JSON POST over the shared ``requests.Session``.

Every answer is checked here: 200 ``ok`` is delivered; 429 (with ``Retry-After``),
408 and 5xx, timeouts and connection errors are retryable; 400/403/404/410 and other
4xx are permanent and carry Slack's own reason (``no_service``,
``channel_is_archived``, ``invalid_payload``...). A 3xx is a permanent ``redirect``:
it is never followed (following would send the alert, or a bodiless GET, to whatever
host the ``Location`` names, and record it as delivered). Slack's answers are a few
bytes: at most ``json_post.MAX_ANSWER_BYTES`` is read, before ``deadline_s`` (the shared post path,
``json_post``, which also decides what is retryable). A worker never sleeps on a rate
limit: it reschedules the job.
The webhook URL is itself a credential, so it never appears in a log or an error.
The Block Kit message is built by ``slack_blocks`` with slack_sdk's models.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from service.analysis.alert import Alert
from service.delivery.digests.store import Digest
from service.delivery.sinks.base import SinkEnv, SinkSpec, SinkType, check_digest, check_url
from service.delivery.sinks.fitting import json_bytes
from service.delivery.sinks.json_post import Answer, post, raise_if_retryable
from service.delivery.sinks.slack_blocks import (
    slack_digest_message,
    slack_incident_message,
    slack_message,
)
from service.errors import DeliveryRejected
from service.http import (
    require_secure_url,
)
from service.http_session import http_session

if TYPE_CHECKING:
    from service.delivery.incidents.events import IncidentEvent
    from service.settings import Settings

DEFAULT_TIMEOUT = (3.05, 10.0)
#: The longest one send may spend reading Slack's answer, from the request's start.
DEFAULT_DEADLINE_S = 15.0
SLACK_SINK_ID = "slack"
#: Slack takes about one message a second per webhook; the margin absorbs the few
#: milliseconds between taking the turn and the request arriving.
SLACK_PACE_S = 1.05
_REASON = re.compile(r"^[a-z0-9_]{1,64}$")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SlackSink:
    """Posts one Block Kit message per alert to ``SLACK_WEBHOOK_URL``."""

    pace_s: float | None = SLACK_PACE_S
    kind: str = "chat"

    def __init__(self, url: str, *, name: str = SLACK_SINK_ID,
                 session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 deadline_s: float = DEFAULT_DEADLINE_S,
                 clock: Callable[[], datetime] = _utc_now,
                 monotonic: Callable[[], float] = time.monotonic, actions: bool = False) -> None:
        self._url = require_secure_url(url, "SLACK_WEBHOOK_URL")
        #: Buttons on alert and incident messages (``SLACK_SIGNING_SECRET`` is set).
        self.actions = actions
        self.name: str = name
        self._session = session or http_session(os.environ)
        self._timeout = timeout
        self._deadline_s = deadline_s
        self._clock = clock
        self._monotonic = monotonic

    def __repr__(self) -> str:
        return f"SlackSink(name={self.name!r})"

    def send(self, alert: Alert) -> None:
        """Post the alert's message; 200 ``ok`` is delivered, anything else raises."""
        self._post(slack_message(alert, actions=self.actions))

    def send_incident(self, event: IncidentEvent) -> None:
        """Post the incident event's message; answers are read as for an alert."""
        self._post(slack_incident_message(event, actions=self.actions))

    def send_digest(self, digest: Digest) -> None:
        """Post a period's digest; answers are read as for an alert."""
        self._post(slack_digest_message(digest))

    def _post(self, message: dict[str, Any]) -> None:
        body = json_bytes(message, ascii_only=True)
        # A slow answer is not retried: Slack may have posted it, and again would duplicate it.
        answer = post(self._session, self._url, body,
                      {"Content-Type": "application/json; charset=utf-8"}, who="Slack",
                      timeout=self._timeout, deadline_s=self._deadline_s,
                      monotonic=self._monotonic, slow_answer_retryable=False)
        self._check(answer)

    def _check(self, answer: Answer) -> None:
        status = answer.status
        raise_if_retryable(answer, "Slack", self._clock())
        if 300 <= status < 400:
            raise DeliveryRejected(
                f"Slack answered {status} (a redirect, not followed): check SLACK_WEBHOOK_URL",
                reason="redirect", status=status)
        reason = answer.text.strip()
        if status == 200 and reason == "ok":
            return
        if not _REASON.match(reason):
            reason = f"http_{status}"
        if status < 300:
            # Slack took the request but did not say ok: sending again could duplicate it.
            reason = "unexpected_response"
        raise DeliveryRejected(f"Slack refused the alert: {status} {reason}",
                               reason=reason, status=status)


def _build(spec: SinkSpec, env: SinkEnv) -> SlackSink:
    return SlackSink(spec.options["url"], name=spec.name, session=env.session, clock=env.clock,
                     actions=bool(env.settings.slack_signing_secret))


def _from_settings(settings: Settings) -> list[SinkSpec]:
    if not settings.slack_webhook_url:
        return []
    return [SinkSpec(SLACK_SINK_ID, "slack", {"url": settings.slack_webhook_url})]


SINK_TYPE = SinkType("slack", _build, _from_settings, required=("url",), optional=("digest",),
                     secrets=frozenset({"url"}),
                     check=lambda options, environ: check_digest(check_url(options)),
                     variable="SLACK_WEBHOOK_URL")
