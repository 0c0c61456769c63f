"""Calls without a Voice SDK party are not fetched; SDK calls without events are noted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from service.analysis.no_events import NoEventsNotice
from service.analysis.step import AnalysisPolicy, AnalysisRequest, analyze_step
from service.calls import Call, has_sdk_party
from service.decisions import AnalysisOutcome, Done
from service.insights.events import Event

NOW = datetime(2026, 11, 27, 10, 15, tzinfo=UTC)
CALL_SID = "CA" + "c3" * 16
ACCOUNT_SID = "AC" + "d4" * 16


def call(status: str = "completed", from_: str | None = "+14155550100",
         to: str | None = "+16505550199") -> Call:
    return Call(call_sid=CALL_SID, account_sid=ACCOUNT_SID, status=status, from_=from_, to=to)


def refuse(call_sid: str) -> list[Event]:
    raise AssertionError("Insights was fetched")


@pytest.mark.parametrize(("from_", "to", "expected"), [
    ("+14155550100", "+16505550199", False), ("client:alice", "+16505550199", True),
    ("+14155550100", "client:bob", True), ("sip:a@example.com", "+16505550199", False),
    (None, None, True),
])
def test_sdk_party(from_: str | None, to: str | None, expected: bool) -> None:
    """A leg has an SDK party when From or To is a client: identity (unknown ends: maybe)."""
    assert has_sdk_party(call(from_=from_, to=to)) is expected


def test_phone_only_call_is_skipped_without_a_fetch() -> None:
    """With only sdk_edge, a phone-to-phone leg ends at once as skipped, logged once."""
    with capture_logs() as logs:
        result = analyze_step(AnalysisRequest(call()), fetch=refuse, policy=AnalysisPolicy(),
                              route=lambda alert: ["log"], now=NOW)
    assert isinstance(result.decision, Done)
    assert result.decision.outcome == AnalysisOutcome.SKIPPED
    assert [line["event"] for line in logs] == ["analysis_skipped"]
    assert logs[0]["log_level"] == "info" and "<Dial><Client>" in logs[0]["message"]


def test_failed_phone_only_call_is_still_alerted_without_a_fetch() -> None:
    """A failed phone-to-phone leg is alerted as call/failed, still without a fetch."""
    result = analyze_step(AnalysisRequest(call("failed")), fetch=refuse,
                          policy=AnalysisPolicy(), route=lambda alert: ["slack"], now=NOW)
    assert isinstance(result.decision, Done)
    assert result.decision.outcome == AnalysisOutcome.ALERT
    assert result.alert is not None
    assert [issue.key for issue in result.alert.issues] == ["call/failed"]
    assert [d.sink for d in result.decision.deliveries] == ["slack"]


def test_other_edges_or_sdk_party_are_fetched() -> None:
    """A client: leg, or a configuration with other edges, is fetched as before."""
    fetched: list[str] = []

    def fetch(call_sid: str) -> list[Event]:
        fetched.append(call_sid)
        return [Event(timestamp=NOW, call_sid=call_sid, account_sid=ACCOUNT_SID,
                      edge="sdk_edge", group="connection", name="outgoing", level="INFO")]

    for subject, policy in ((call(from_="client:alice"), AnalysisPolicy()),
                            (call(), AnalysisPolicy(edges=("sdk_edge", "carrier_edge")))):
        result = analyze_step(AnalysisRequest(subject), fetch=fetch, policy=policy,
                              route=lambda alert: [], now=NOW)
        assert isinstance(result.decision, Done)
        assert result.decision.outcome == AnalysisOutcome.NO_ALERT
    assert fetched == [CALL_SID, CALL_SID]


def test_sdk_calls_without_events_warn_once_an_hour() -> None:
    """Each given-up SDK call is an INFO line; the aggregate warning comes at most hourly."""
    clock = [0.0]
    notice = NoEventsNotice(every_s=3600, clock=lambda: clock[0])
    with capture_logs() as logs:
        notice.gave_up(3)
        clock[0] = 10.0
        notice.gave_up(3)
        notice.gave_up(3)
        clock[0] = 3700.0
        notice.gave_up(3)
    warnings = [line for line in logs if line["log_level"] == "warning"]
    infos = [line for line in logs if line["event"] == "analysis_gave_up"]
    assert len(infos) == 4 and all(line["log_level"] == "info" for line in infos)
    assert [(w["event"], w["calls"]) for w in warnings] == [
        ("sdk_calls_without_events", 1), ("sdk_calls_without_events", 3)]
