"""The incidents table and an alert printed for a person keep Twilio's and callers' text
on its own line, control characters escaped."""

from __future__ import annotations

import json

from devtools.sample_alerts import sample_alert
from service.cli.analysis import format_alert
from service.cli.incidents import format_table
from service.delivery.incidents.store import Snapshot


def test_incident_rows_escape_their_group_values() -> None:
    """An issue key with a newline and an escape sequence stays in its incident's row."""
    group = {"issue": "sdk_edge/x\ninc_forged  open  storm\x1b[31m"}
    snapshot = Snapshot({"id": "inc_a", "status": "open", "trigger": "storm", "route": "r",
                         "calls": "3", "opened_at": "100", "group": json.dumps(group)})
    lines = format_table([snapshot], now=160.0).splitlines()
    assert len(lines) == 2  # the header and the one incident
    assert "x\\ninc_forged  open  storm\\x1b[31m" in lines[1]


def test_an_alert_for_a_person_escapes_descriptions() -> None:
    """A description (Twilio's SDK message) with line breaks prints as one issue line."""
    alert = sample_alert(issues=1, description="lost\n  - forged issue\x07")
    text = format_alert(alert)
    issue_lines = [line for line in text.splitlines() if line.startswith("  - ")]
    assert len(issue_lines) == 1 and "lost\\n  - forged issue\\x07" in issue_lines[0]


def test_a_refused_tls_certificate_gets_the_heroku_hint() -> None:
    """Redis's self-signed certificate (Heroku) is named with the variable that accepts it;
    other Redis errors get no hint."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from service.cli.redis_errors import tls_hint

    refused = RedisConnectionError("Error 1 connecting to h:6380. [SSL: CERTIFICATE_VERIFY_FAILED]"
                                   " certificate verify failed: self-signed certificate")
    assert tls_hint(refused).endswith("set REDIS_TLS_VERIFY=false")
    assert tls_hint(RedisConnectionError("Connection refused.")) == ""
