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
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime

import requests

from service.analysis.alert import Alert
from service.errors import DeliveryRejected, DeliveryRetryable
from service.http import host_of, parse_retry_after, require_secure_url, user_agent

DEFAULT_TIMEOUT = (3.05, 10.0)
_RETRYABLE_STATUSES = frozenset({408, 429})


def webhook_sink_id(url: str) -> str:
    """``webhook-<8 hex>``: names one endpoint without revealing its URL."""
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:8]


def signing_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part of a ``whsec_<base64>`` secret."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_request(key: bytes, alert: Alert, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of one delivery attempt of ``alert``."""
    body = json.dumps(alert.to_envelope(), separators=(",", ":"), ensure_ascii=True).encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent(),
        "webhook-id": alert.alert_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, alert.alert_id, timestamp, body),
    }
    return body, headers


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookSink:
    """POSTs signed alerts to one endpoint of ``ALERT_WEBHOOK_URLS``."""

    def __init__(self, url: str, secret: str, *, session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self._url = require_secure_url(url, "ALERT_WEBHOOK_URLS")
        self._key = signing_key(secret)
        self._session = session or requests.Session()
        self._timeout = timeout
        self._clock = clock
        self.sink_id = webhook_sink_id(url)
        self.host = host_of(url)

    def __repr__(self) -> str:
        return f"WebhookSink(sink_id={self.sink_id!r}, host={self.host!r})"

    def send(self, alert: Alert) -> None:
        """One signed POST; 2xx is delivered, anything else raises."""
        body, headers = signed_request(self._key, alert, self._clock())
        try:
            # stream=True: the answer's body is never needed, so a huge one is never read.
            response = self._session.post(self._url, data=body, headers=headers,
                                          timeout=self._timeout, allow_redirects=False,
                                          stream=True)
        except requests.RequestException as err:
            # ``from None``: requests' message holds the full URL, which may carry a secret.
            raise DeliveryRetryable(
                f"webhook {self.host} could not be reached ({type(err).__name__})"
            ) from None
        with response:
            self._check(response)

    def _check(self, response: requests.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in _RETRYABLE_STATUSES or status >= 500:
            raise DeliveryRetryable(
                f"webhook {self.host} answered {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After"), self._clock()),
                status=status,
            )
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
