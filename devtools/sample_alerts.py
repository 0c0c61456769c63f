"""Helpers for tests that deliver alerts: the secret the webhook receiver verifies, a sample alert.

The receivers themselves (``slack_receiver``, ``webhook_receiver``) are fixtures in
``tests/conftest.py``; ``webhook_receiver`` verifies ``WEBHOOK_SECRET``.
``sample_alert`` builds an alert straight from the models.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from service.analysis.alert import Alert, Issue, make_alert_id
from service.calls import Call
from service.insights.events import ClientInfo

#: The signing secret the webhook receiver verifies (32 fixed bytes, base64).
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"callwatch-test-webhook-secret-32").decode()


def sample_alert(*, issues: int = 2, description: str = "The ICE connection failed.",
                 call_sid: str = "CA" + "0123456789abcdef" * 2,
                 to: str = "+14155550123", truncated_issues: int = 0,
                 with_client: bool = True) -> Alert:
    """An alert built directly from the models (no classifier): one error, then warnings."""
    call = Call(call_sid=call_sid, account_sid="AC" + "1" * 32, status="completed",
                direction="outbound-api", from_="client:alice", to=to, duration_s=42)
    built = []
    for n in range(issues):
        error = n == 0
        built.append(Issue(
            key=f"sdk_edge/connection/error/{31000 + n}" if error
            else f"sdk_edge/network-quality-warning/high-rtt-{n}",
            edge="sdk_edge",
            group="connection" if error else "network-quality-warning-raised",
            name="error" if error else f"high-rtt-{n}",
            level="ERROR" if error else "WARNING",
            severity="error" if error else "warning",
            count=1 if error else 2,
            first_at="2026-11-27T10:14:00Z", last_at="2026-11-27T10:14:14Z",
            duration_s=None if error else 14.0, cleared=None if error else True,
            error_code=31005 if error else None, description=description))
    client = ClientInfo(sdk_type="twilio-voice-js", sdk_version="2.18.4", platform="browser",
                        os_name="macOS", os_version="15.1", device_model="MacBookPro18,1",
                        device_vendor="Apple", city="Oakland", country_code="US")
    return Alert(alert_id=make_alert_id(call_sid, [i.key for i in built]),
                 created_at=datetime(2026, 11, 27, 10, 15, tzinfo=UTC),
                 call=call, issues=tuple(built), client=client if with_client else None,
                 truncated_issues=truncated_issues)
