"""ConversationRelay events: category voice-agent, own descriptions, latency warnings."""

from __future__ import annotations

from typing import Any

from service.analysis.classifier import AlertPolicy, classify
from service.calls import Call
from service.insights.events import parse_events

CALL = Call(call_sid="CA" + "a" * 32, account_sid="AC" + "b" * 32, status="completed",
            from_="+14155550100", to="+14155550123")


def relay(name: str, level: str | None = None, at: str = "10:15:23", **payload: Any) -> dict[str, Any]:
    """A ConversationRelay event as Twilio's example page shows it (edge and level null)."""
    event: dict[str, Any] = {
        "timestamp": f"2026-11-27T{at}Z", "call_sid": CALL.call_sid,
        "account_sid": CALL.account_sid, "name": name, "group": "conversation_relay",
        "sdk_edge": None, "sip_edge": None, "client_edge": None, "carrier_edge": None,
        "edge": None, "level": level}
    if payload:
        event["conversation_relay"] = {"session_id": "VX1", "sequence_number": 1, **payload}
    return event


def keys(events: list[dict[str, Any]], policy: AlertPolicy | None = None) -> dict[str, Any]:
    return {i.key: i for i in classify(CALL, parse_events(events), policy or AlertPolicy())}


def test_twilios_example_page_error_has_a_description_and_category() -> None:
    """The example page's bare ERROR event (no payload) is an error in voice-agent, described."""
    issues = keys([relay("configurations"), relay("error", "ERROR"), relay("call_wrap_up")])
    [issue] = issues.values()
    assert issue.key == "conversation_relay/error"
    assert (issue.severity, issue.category, issue.edge) == ("error", "voice-agent", None)
    assert issue.description and "ConversationRelay" in issue.description


def test_an_error_events_own_words_and_code_are_kept() -> None:
    """An error carrying a code and a description is keyed on the code and quotes it."""
    [issue] = keys([relay("error", "ERROR", error_code=64107,
                          description="WebSocket closed")]).values()
    assert issue.key == "conversation_relay/error/64107" and issue.error_code == 64107
    assert issue.description is not None and issue.description.endswith(": WebSocket closed")


def test_latency_above_the_limit_is_one_warning_with_the_worst_value() -> None:
    """Two slow speech-to-text turns and one fast: one warning, count 2, worst 2,900 ms."""
    issues = keys([relay("stt_latency", at="10:15:01", latency_ms=1600),
                   relay("stt_latency", at="10:15:09", latency_ms=2900),
                   relay("stt_latency", at="10:15:20", latency_ms=400),
                   relay("tts_latency", latency_ms=300)])
    [issue] = issues.values()
    assert (issue.key, issue.severity, issue.count) == ("conversation_relay/stt_latency",
                                                        "warning", 2)
    assert "2,900 ms" in (issue.description or "")
    assert (issue.first_at, issue.last_at) == ("2026-11-27T10:15:01Z", "2026-11-27T10:15:09Z")


def test_latency_is_read_wherever_the_payload_sits() -> None:
    """latency_ms under conversation_relay, payload, properties, data or on the event itself."""
    for placement in ("conversation_relay", "payload", "properties", "data", None):
        event = relay("tts_latency")
        if placement is None:
            event["latency_ms"] = 1800
        else:
            event[placement] = {"latency_ms": 1800}
        assert list(keys([event])) == ["conversation_relay/tts_latency"], placement


def test_speech_tokens_and_wrap_up_make_no_issue() -> None:
    """Timeline markers and latency events without a latency are never issues."""
    names = ["start_of_customer_speech", "end_of_customer_speech", "first_token_received",
             "final_token_received", "interrupt", "language_changed", "call_wrap_up",
             "stt_latency"]
    assert keys([relay(name) for name in names]) == {}


def test_limit_min_level_and_ignore_apply() -> None:
    """VOICE_AGENT_LATENCY_MS moves the limit; ALERT_MIN_LEVEL=ERROR drops the warning;
    ALERT_IGNORE=conversation_relay/error drops the error."""
    events = [relay("stt_latency", latency_ms=2000), relay("error", "ERROR")]
    assert set(keys(events, AlertPolicy(voice_agent_latency_ms=2500))) == {
        "conversation_relay/error"}
    assert set(keys(events, AlertPolicy(min_level="ERROR"))) == {"conversation_relay/error"}
    assert set(keys(events, AlertPolicy(ignore=frozenset({"conversation_relay/error"})))) == {
        "conversation_relay/stt_latency"}
