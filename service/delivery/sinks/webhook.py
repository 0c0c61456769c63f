"""Signed JSON alerts to any HTTPS endpoint, per the Standard Webhooks spec.

The body is ``alert.to_envelope()`` serialised once (compact, ASCII) and the
signature covers exactly those bytes: ``v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`` keyed with the decoded part of the ``whsec_`` secret.
``webhook-id`` is the alert id, the same on every retry, so receivers drop
duplicates on it. Redirects are not followed (a receiver that moved must be
reconfigured, and following could send the alert somewhere unexpected).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from service.analysis.alert import Alert
from service.delivery.incidents.events import IncidentEvent
from service.delivery.sinks.base import SinkEnv, SinkOptionError, SinkSpec, SinkType, check_url
from service.delivery.sinks.fitting import WEBHOOK_MAX_BYTES, fit_issues, json_bytes
from service.delivery.sinks.json_post import post, raise_if_retryable
from service.errors import ConfigError, DeliveryRejected
from service.http import host_of, require_secure_url, user_agent
from service.http_session import http_session

if TYPE_CHECKING:
    from service.settings import Settings

DEFAULT_TIMEOUT = (3.05, 10.0)


def legacy_webhook_sink_id(url: str) -> str:
    """``webhook-<8 hex>``: the name earlier versions gave an endpoint (still accepted
    for deliveries queued before an upgrade)."""
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:8]


def webhook_sink_names(urls: Sequence[str]) -> list[str]:
    """Readable names for ``ALERT_WEBHOOK_URLS``: ``webhook-<host>``, then ``-2``, ``-3``
    for a host named twice. The host is no secret; the path (which may hold a token)
    never appears. At most 40 characters, ``[a-z0-9-]``."""
    names: list[str] = []
    for url in urls:
        host = re.sub(r"[^a-z0-9]+", "-", (host_of(url) or "endpoint").lower()).strip("-")
        base = ("webhook-" + host)[:34].rstrip("-")
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not a usable ``whsec_<base64>`` signing secret, or ``None``
    (for ``ALERT_WEBHOOK_SECRET`` and a routing file's ``secret`` alike)."""
    if not secret.startswith("whsec_"):
        return "must look like whsec_<base64>"
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        return "the part after whsec_ is not base64"
    if len(key) < 16:
        return "the key must be at least 16 bytes"
    return None


def signing_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part of a ``whsec_<base64>`` secret."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_body(alert: Alert) -> bytes:
    """The signed body: the alert's envelope (compact, ASCII) within ``WEBHOOK_MAX_BYTES``;
    issues that do not fit are left out and counted in ``truncated_issues`` (schema 1)."""
    body = json_bytes(alert.to_envelope(), ascii_only=True)
    if len(body) <= WEBHOOK_MAX_BYTES:  # nearly always: serialised once
        return body
    fitted = fit_issues(alert, lambda a: len(json_bytes(a.to_envelope(), ascii_only=True)),
                        WEBHOOK_MAX_BYTES)
    return json_bytes(fitted.to_envelope(), ascii_only=True)


def signed_request(key: bytes, alert: Alert, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of one delivery attempt of ``alert``."""
    body = webhook_body(alert)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent(),
        "webhook-id": alert.alert_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, alert.alert_id, timestamp, body),
    }
    return body, headers


def signed_event_request(key: bytes, event: IncidentEvent, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of one delivery attempt of an incident event."""
    body = event.body(WEBHOOK_MAX_BYTES)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent(),
        "webhook-id": event.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, event.webhook_id, timestamp, body),
    }
    return body, headers


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookSink:
    """POSTs signed alerts to one endpoint of ``ALERT_WEBHOOK_URLS``."""

    pace_s: float | None = None
    kind: str = "webhook"

    def __init__(self, url: str, secret: str, *, name: str | None = None,
                 session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self._url = require_secure_url(url, "ALERT_WEBHOOK_URLS")
        self._key = signing_key(secret)
        self._session = session or http_session(os.environ)
        self._timeout = timeout
        self._clock = clock
        self.host = host_of(url)
        self.name = name or webhook_sink_names([url])[0]

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.name!r}, host={self.host!r})"

    def send(self, alert: Alert) -> None:
        """One signed POST; 2xx is delivered, anything else raises."""
        self._post(*signed_request(self._key, alert, self._clock()))

    def send_incident(self, event: IncidentEvent) -> None:
        """One signed POST of the incident event (``webhook-id`` = incident id:sequence)."""
        self._post(*signed_event_request(self._key, event, self._clock()))

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        # The answer's body is never needed, so a huge one is never read.
        answer = post(self._session, self._url, body, headers, who=f"webhook {self.host}",
                      timeout=self._timeout, read_body=False)
        status = answer.status
        if 200 <= status < 300:
            return
        raise_if_retryable(answer, f"webhook {self.host}", self._clock())
        if 300 <= status < 400:
            raise DeliveryRejected(
                f"webhook {self.host} answered {status} (a redirect, not followed): "
                "configure the endpoint's final URL",
                reason="redirect", status=status,
            )
        if status == 410:
            raise DeliveryRejected(
                f"webhook {self.host} answered 410: the endpoint is gone; "
                "remove it from ALERT_WEBHOOK_URLS",
                reason="endpoint_gone", status=status,
            )
        raise DeliveryRejected(f"webhook {self.host} refused the alert with {status}",
                               reason=f"http_{status}", status=status)


def _build(spec: SinkSpec, env: SinkEnv) -> WebhookSink:
    return WebhookSink(spec.options["url"], spec.options["secret"], name=spec.name,
                       session=env.session, clock=env.clock)


def _from_settings(settings: Settings) -> list[SinkSpec]:
    secret = settings.alert_webhook_secret
    if settings.alert_webhook_urls and not secret:
        raise ConfigError("ALERT_WEBHOOK_SECRET", "required when ALERT_WEBHOOK_URLS is set")
    problem = secret_problem(secret) if secret else None
    if problem:
        raise ConfigError("ALERT_WEBHOOK_SECRET", problem)
    if not settings.alert_webhook_urls or not secret:
        return []
    # The same URL twice would deliver every alert twice.
    urls = list(dict.fromkeys(settings.alert_webhook_urls))
    return [SinkSpec(name, "webhook", {"url": url, "secret": settings.alert_webhook_secret,
                                       "legacy_name": legacy_webhook_sink_id(url)})
            for name, url in zip(webhook_sink_names(urls), urls, strict=True)]


def _check(options: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    check_url(options)
    secret = options["secret"]
    if not isinstance(secret, str) or not secret.strip():
        raise SinkOptionError("secret", "must be text")
    problem = secret_problem(secret)
    if problem:
        raise SinkOptionError("secret", problem)
    return options


SINK_TYPE = SinkType("webhook", _build, _from_settings, required=("url", "secret"),
                     secrets=frozenset({"url", "secret"}), check=_check, variable="ALERT_WEBHOOK_URLS")
