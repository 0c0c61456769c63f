"""The call's one JSON shape: what the intake stores, a job carries and an alert shows."""

from __future__ import annotations

import json

from devtools.sample_alerts import sample_alert
from service.analysis.alert import Alert
from service.calls import Call

CALL = Call(call_sid="CA" + "ab" * 16, account_sid="AC" + "1" * 32, status="failed",
            direction="outbound-api", from_="client:alice", to="+14155550123", duration_s=0,
            parent_call_sid="CA" + "cd" * 16, sip_response_code=404,
            timestamp="Fri, 27 Nov 2026 10:15:00 +0000", sequence_number=3)


def test_json_names_the_caller_from_and_keeps_every_field() -> None:
    """Every field survives a trip through JSON, and the caller is under ``from``."""
    data = json.loads(json.dumps(CALL.to_json()))
    assert data["from"] == "client:alice" and "from_" not in data
    assert Call.from_json(data) == CALL


def test_jobs_queued_by_the_previous_version_are_read() -> None:
    """A call stored with the caller under the old key ``from_`` reads the same."""
    old = {**CALL.to_json(), "from_": "client:alice"}
    del old["from"]
    assert Call.from_json(old) == CALL


def test_alert_call_block_is_the_same_shape() -> None:
    """The alert's ``call`` block is the call's JSON, and reads back into the same call."""
    alert = sample_alert()
    payload = alert.to_payload()
    assert payload["call"] == alert.call.to_json()
    assert Alert.from_payload(payload, created_at=alert.created_at).call == alert.call
