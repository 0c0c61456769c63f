"""Webhook signing: checked with the standardwebhooks reference library, not our code."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devtools.sample_alerts import WEBHOOK_SECRET, sample_alert
from service.delivery.sinks.webhook import signed_request, signing_key, webhook_sink_names
from service.http import parse_retry_after


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_signature_verifies_with_reference_library() -> None:
    """The body and headers we send pass standardwebhooks' own verification."""
    alert = sample_alert()
    body, headers = signed_request(signing_key(WEBHOOK_SECRET), alert, _now())
    parsed = Webhook(WEBHOOK_SECRET).verify(body, headers)
    assert parsed == alert.to_envelope()


def test_tampered_body_fails_verification() -> None:
    """Changing one byte of the body breaks the signature."""
    body, headers = signed_request(signing_key(WEBHOOK_SECRET), sample_alert(), _now())
    tampered = body.replace(b'"severity":"error"', b'"severity":"warning"')
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(tampered, headers)


def test_other_secret_fails_verification() -> None:
    """A receiver holding another secret rejects the message."""
    body, headers = signed_request(signing_key(WEBHOOK_SECRET), sample_alert(), _now())
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY").verify(body, headers)


def test_headers_are_exactly_named() -> None:
    """Standard Webhooks header names, the alert id as webhook-id, unix seconds, v1 scheme."""
    now = _now()
    alert = sample_alert()
    _, headers = signed_request(signing_key(WEBHOOK_SECRET), alert, now)
    assert set(headers) == {"Content-Type", "User-Agent", "webhook-id", "webhook-timestamp",
                            "webhook-signature"}
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("callwatch/")
    assert headers["webhook-id"] == alert.alert_id
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")


def test_body_is_compact_envelope() -> None:
    """The body is the alert envelope serialised once, compact and ASCII-only."""
    alert = sample_alert(description="caf\u00e9 \u2014 micro")
    body, _ = signed_request(signing_key(WEBHOOK_SECRET), alert, _now())
    assert body.isascii()
    assert body == json.dumps(alert.to_envelope(), separators=(",", ":")).encode()


def test_same_webhook_id_on_every_attempt() -> None:
    """Retries at a later time keep the webhook-id so receivers can de-duplicate."""
    alert = sample_alert()
    key = signing_key(WEBHOOK_SECRET)
    _, first = signed_request(key, alert, datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    _, later = signed_request(key, alert, datetime(2026, 11, 27, 10, 5, tzinfo=UTC))
    assert first["webhook-id"] == later["webhook-id"]
    assert first["webhook-signature"] != later["webhook-signature"]


def test_webhook_names_show_the_host_and_hide_the_path() -> None:
    """A webhook sink's name is readable (its host), fits [a-z0-9-]{1,40}, and names no secret."""
    names = webhook_sink_names(["https://hooks.example.com/in?token=s3cret",
                                "https://" + "x" * 60 + ".example.com/in"])
    assert names[0] == "webhook-hooks-example-com"
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", name) for name in names)
    assert "s3cret" not in str(names)


@pytest.mark.parametrize(("value", "expected"), [
    ("2", 2.0), (" 120 ", 120.0), ("Fri, 27 Nov 2026 10:00:30 GMT", 30.0),
    ("Fri, 27 Nov 2026 09:00:00 GMT", 0.0), ("soon", None), ("", None), (None, None),
])
def test_retry_after_seconds_or_http_date(value: str | None, expected: float | None) -> None:
    """Retry-After is read as delay-seconds or an HTTP-date relative to the clock."""
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == expected
