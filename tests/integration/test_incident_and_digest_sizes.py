"""Incident events and digests built from hostile, capped values still fit their receivers.

Twilio's texts are cut at 1,000 characters, but an incident counts every distinct SDK
and country, and a digest lists identities and summaries: Teams cards (27,000 B) and
webhook incident bodies (256,000 B) are measured on the bytes the stand-ins received.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import requests

from devtools.sample_alerts import WEBHOOK_SECRET, sample_alert
from devtools.standins import WebhookReceiver
from devtools.teams_standin import TeamsStandIn
from service.delivery.digests.periods import Period, parse_digest
from service.delivery.digests.store import Digest, WorstCall
from service.delivery.incidents.events import IncidentEvent
from service.delivery.incidents.grouping import MAX_COUNTRY, MAX_SDK, Facets
from service.delivery.sinks.fitting import TEAMS_MAX_BYTES, WEBHOOK_MAX_BYTES
from service.delivery.sinks.teams import TeamsSink
from service.delivery.sinks.webhook import WebhookSink
from service.http_session import http_session
from service.insights.events import ClientInfo

#: Texts at the 1,000-character cap that escaping makes longer: markdown characters
#: (a backslash each) and digits (a word joiner, 3 bytes, between each two).
HOSTILE = {"underscores": lambda i: ("a_" * 500)[:996] + f"{i:04d}",
           "digits": lambda i: "1" * 996 + f"{i:04d}"}


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with http_session({}) as s:
        yield s


def _incident(value: object) -> IncidentEvent:
    v = value  # a function of the index
    data = {"schema_version": 1, "incident_id": "inc_" + "a" * 20, "route": "r",
            "group": {"identity": v(0)}, "trigger": "storm", "status": "open",  # type: ignore[operator]
            "opened_at": "2026-12-07T07:00:00Z", "updated_at": "2026-12-07T07:00:00Z",
            "resolved_at": None, "calls": 300, "calls_since_last": 0,
            "by_issue": {f"sdk_edge/{v(i)}": 1 for i in range(300)},  # type: ignore[operator]
            "by_error_code": {str(31000 + i): 1 for i in range(300)},
            "by_sdk": {f"twilio-voice-js {v(i)}": 2 + i % 7 for i in range(300)},  # type: ignore[operator]
            "by_country": {v(i): 1 for i in range(300)},  # type: ignore[operator]
            "sample_call_sids": [f"CA{i:032x}" for i in range(20)], "ratio": None,
            "acknowledged_by": None}
    return IncidentEvent("incident.opened", "2026-12-07T07:00:00Z", "inc_" + "a" * 20 + ":1", data)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_teams_incident_card_fits(teams: TeamsStandIn, session: requests.Session, kind: str) -> None:
    """An incident whose group and breakdowns hold 1,000-character values that escaping
    grows is one accepted Teams card of at most 27,000 bytes, headline first."""
    TeamsSink(teams.url, name="teams", session=session).send_incident(_incident(HOSTILE[kind]))
    [post] = teams.accepted()
    assert post.size <= TEAMS_MAX_BYTES
    assert post.text().startswith("Incident opened")


def test_webhook_incident_body_fits(webhook_receiver: WebhookReceiver,
                                    session: requests.Session) -> None:
    """300 distinct 1,000-character SDKs and countries: the signed incident body is at most
    256,000 bytes, verified, and keeps the largest counts of each breakdown."""
    event = _incident(HOSTILE["digits"])
    WebhookSink(webhook_receiver.url, WEBHOOK_SECRET, name="crm", session=session).send_incident(event)
    [delivery] = webhook_receiver.accepted()
    assert delivery.verified and len(delivery.raw) <= WEBHOOK_MAX_BYTES
    data = delivery.body["data"]
    assert data["calls"] == 300 and data["schema_version"] == 1
    kept, every = data["by_sdk"], event.data["by_sdk"]
    dropped = [n for sdk, n in every.items() if sdk not in kept]
    assert 0 < len(kept) < 300 and all(every[sdk] == n for sdk, n in kept.items())
    assert min(kept.values()) >= max(dropped)


def test_incident_facets_are_capped_where_recorded() -> None:
    """A client's 1,000-character SDK version and country are counted cut to 100 and 8."""
    base = sample_alert()
    alert = replace(base, client=ClientInfo(sdk_type="twilio-voice-js", sdk_version="9" * 1000,
                                            country_code="X" * 1000))
    facets = Facets.of(alert)
    assert len(facets.sdk) == MAX_SDK and len(facets.country) == MAX_COUNTRY


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_teams_digest_card_fits(teams: TeamsStandIn, session: requests.Session, kind: str) -> None:
    """A digest of 1,000-character identities, issues and summaries that escaping grows is
    one accepted Teams card of at most 27,000 bytes as sent."""
    v = HOSTILE[kind]
    period = Period(datetime(2026, 12, 7, 7, tzinfo=UTC), datetime(2026, 12, 7, 8, tzinfo=UTC))
    digest = Digest(sink="teams", policy=parse_digest({"every": "hour"}, "x"), period=period,
                    calls_analysed=100, alerts=50,
                    by_issue={f"sdk_edge/{v(i)}": 5 for i in range(10)},
                    by_agent={v(i): 5 for i in range(10)}, by_country={"US": 3},
                    incidents={f"inc_{i}": "agent " + v(i) for i in range(10)},
                    worst=tuple(WorstCall(f"CA{i:032x}", v(i), "error") for i in range(5)))
    TeamsSink(teams.url, name="teams", session=session).send_digest(digest)
    [post] = teams.accepted()
    assert post.size <= TEAMS_MAX_BYTES
    assert "callwatch digest" in post.text()
