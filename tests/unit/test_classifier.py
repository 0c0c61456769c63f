"""The classifier's rules: which events make issues, how warnings pair, the alert built."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.analysis.classifier import AlertPolicy, build_alert, classify, first_client
from service.calls import Call
from service.insights.events import ClientInfo, Event

CALL_SID = "CA" + "a1" * 16
ACCOUNT_SID = "AC" + "b2" * 16
T0 = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 10, 15, 0, tzinfo=UTC)
NQ_RAISED, NQ_CLEARED = "network-quality-warning-raised", "network-quality-warning-cleared"


def call(status: str = "completed", **fields: object) -> Call:
    return Call(call_sid=CALL_SID, account_sid=ACCOUNT_SID, status=status, **fields)  # type: ignore[arg-type]


def ev(at: float | None, group: str | None, name: str | None, level: str | None = "WARNING", *,
       edge: str | None = "sdk_edge", code: int | None = None, message: str | None = None,
       client: ClientInfo | None = None) -> Event:
    """An event ``at`` seconds after T0 (None: no timestamp)."""
    return Event(
        timestamp=None if at is None else T0 + timedelta(seconds=at), call_sid=CALL_SID,
        account_sid=ACCOUNT_SID, edge=edge, group=group, name=name, level=level,
        error_code=code, error_message=message, client=client,
    )


def by_key(issues: list) -> dict:
    return {issue.key: issue for issue in issues}


def test_two_raises_two_clears_pair_up() -> None:
    """Two raise/clear pairs give one issue: count 2, summed duration, cleared."""
    events = [
        ev(0, NQ_RAISED, "high-rtt"), ev(4, NQ_CLEARED, "high-rtt", "INFO"),
        ev(20, NQ_RAISED, "high-rtt"), ev(30, NQ_CLEARED, "high-rtt", "INFO"),
    ]
    [issue] = classify(call(), events, AlertPolicy())
    assert issue.key == "sdk_edge/network-quality-warning/high-rtt"
    assert issue.group == NQ_RAISED
    assert (issue.count, issue.duration_s, issue.cleared) == (2, 14.0, True)
    assert (issue.first_at, issue.last_at) == ("2026-11-27T10:00:00Z", "2026-11-27T10:00:20Z")
    assert (issue.level, issue.severity, issue.error_code) == ("WARNING", "warning", None)
    assert issue.description == "Round-trip time (RTT) above the SDK's threshold"
    assert (issue.category, issue.sdk_message) == ("network", None)


def test_never_cleared_lasts_until_the_last_event() -> None:
    """A warning never cleared runs to the call's last event and is not cleared."""
    events = [ev(10, NQ_RAISED, "high-jitter"),
              ev(70, "connection", "disconnected-by-local", "INFO")]
    [issue] = classify(call(), events, AlertPolicy())
    assert (issue.count, issue.duration_s, issue.cleared) == (1, 60.0, False)


def test_last_raise_uncleared_after_an_earlier_clear() -> None:
    """cleared reflects the last raise: raise, clear, raise (open) is not cleared."""
    events = [
        ev(0, NQ_RAISED, "low-mos"), ev(5, NQ_CLEARED, "low-mos", "INFO"),
        ev(10, NQ_RAISED, "low-mos"), ev(12, "connection", "disconnect-called", "INFO"),
    ]
    [issue] = classify(call(), events, AlertPolicy())
    assert (issue.count, issue.duration_s, issue.cleared) == (2, 7.0, False)


def test_pairing_follows_time_not_list_order() -> None:
    """Events are paired in time order even when the list is shuffled."""
    events = [ev(30, NQ_CLEARED, "high-rtt", "INFO"), ev(0, NQ_RAISED, "high-rtt"),
              ev(4, NQ_CLEARED, "high-rtt", "INFO"), ev(20, NQ_RAISED, "high-rtt")]
    [issue] = classify(call(), events, AlertPolicy())
    assert (issue.count, issue.duration_s, issue.cleared) == (2, 14.0, True)


def test_clear_on_another_edge_does_not_pair() -> None:
    """A cleared event closes only the warning raised on the same edge."""
    events = [ev(0, NQ_RAISED, "high-rtt"),
              ev(5, NQ_CLEARED, "high-rtt", "INFO", edge="client_edge"),
              ev(9, "connection", "disconnected-by-remote", "INFO")]
    [issue] = classify(call(), events, AlertPolicy())
    assert (issue.duration_s, issue.cleared) == (9.0, False)


def test_cleared_alone_makes_no_issue() -> None:
    """A -warning-cleared event never makes an issue, even at WARNING level."""
    assert classify(call(), [ev(0, NQ_CLEARED, "high-rtt", "WARNING")], AlertPolicy()) == []


def test_error_with_code_keys_and_describes_by_code() -> None:
    """An ERROR with an SDK code is keyed by it and described from the catalogue."""
    events = [ev(3, "connection", "error", "ERROR", code=31005, message="WebSocket closed")]
    [issue] = classify(call(), events, AlertPolicy())
    assert issue.key == "sdk_edge/connection/error/31005"
    assert (issue.level, issue.severity, issue.count, issue.error_code) == (
        "ERROR", "error", 1, 31005)
    assert (issue.duration_s, issue.cleared) == (None, None)
    assert issue.description == (
        "A connection error occurred during the call (the Twilio gateway hung up with an error)")
    assert (issue.category, issue.sdk_message) == ("network", "WebSocket closed")


def test_unknown_code_falls_back_to_the_sdk_message() -> None:
    """An uncatalogued code is described by the SDK's own message."""
    [issue] = classify(call(), [ev(0, "connection", "error", "ERROR", code=39999,
                                   message="Something new")], AlertPolicy())
    assert (issue.key, issue.description) == ("sdk_edge/connection/error/39999", "Something new")


def test_different_codes_are_different_issues_and_level_is_the_highest() -> None:
    """Each code is its own issue; one issue's level is the highest level it saw."""
    events = [ev(0, "connection", "error", "WARNING", code=53405),
              ev(1, "connection", "error", "ERROR", code=53405),
              ev(2, "connection", "error", "ERROR", code=31005)]
    issues = by_key(classify(call(), events, AlertPolicy()))
    assert set(issues) == {"sdk_edge/connection/error/53405", "sdk_edge/connection/error/31005"}
    assert (issues["sdk_edge/connection/error/53405"].level,
            issues["sdk_edge/connection/error/53405"].count) == ("ERROR", 2)


def test_event_without_code_is_described_from_the_catalogue() -> None:
    """A code-less ERROR event gets the catalogue's event description."""
    [issue] = classify(call(), [ev(0, "get-user-media", "denied", "ERROR")], AlertPolicy())
    assert issue.key == "sdk_edge/get-user-media/denied"
    assert issue.description == "The microphone request (getUserMedia) was denied"
    assert issue.category == "device"


def test_min_level_error_drops_warnings() -> None:
    """With min_level ERROR, warnings make no issue but errors still do."""
    events = [ev(0, NQ_RAISED, "high-rtt"), ev(1, "ice-connection-state", "failed", "ERROR")]
    issues = classify(call(), events, AlertPolicy(min_level="error"))
    assert [i.key for i in issues] == ["sdk_edge/ice-connection-state/failed"]


def test_ignore_skips_group_name_pairs() -> None:
    """Ignored group/name pairs make no issue, in either spelling of a warning group."""
    events = [ev(0, "audio-level-warning-raised", "constant-audio-output-level"),
              ev(1, NQ_RAISED, "high-rtt"), ev(2, "pc-connection-state", "failed")]
    policy = AlertPolicy(ignore=frozenset({"audio-level-warning-raised/constant-audio-output-level",
                                           "network-quality-warning/high-rtt"}))
    keys = [i.key for i in classify(call(), events, policy)]
    assert keys == ["sdk_edge/pc-connection-state/failed"]


def test_info_only_call_has_no_alert() -> None:
    """A call whose events are all INFO/DEBUG/UNKNOWN/null gets no alert."""
    events = [ev(0, "connection", "outgoing", "INFO"),
              ev(1, "ice-candidate", "ice-candidate", "DEBUG"),
              ev(2, "call", "call.connected", "UNKNOWN"),
              ev(3, "conversation_relay", "tts", None)]
    assert build_alert(call(), events, AlertPolicy(), now=NOW) is None


def test_unknown_group_with_warning_is_kept() -> None:
    """An unknown group or name at WARNING is an issue, not an error."""
    [issue] = classify(call(), [ev(0, "brand-new-group", "odd-thing", "WARNING")], AlertPolicy())
    assert (issue.key, issue.level, issue.description) == (
        "sdk_edge/brand-new-group/odd-thing", "WARNING", None)


def test_null_edge_group_name_and_timestamp_are_tolerated() -> None:
    """Missing edge, group, name or time become unknown_edge/unknown and no times."""
    events = [ev(None, None, None, "ERROR", edge=None), ev(None, "x", "y", None, edge=None)]
    [issue] = classify(call(), events, AlertPolicy())
    assert (issue.key, issue.edge, issue.group, issue.name) == (
        "unknown_edge/unknown/unknown", "unknown_edge", "unknown", "unknown")
    assert (issue.first_at, issue.last_at) == (None, None)


def test_untimed_clear_closes_the_warning_before_it() -> None:
    """A cleared event without a timestamp still clears the raise listed before it."""
    events = [ev(0, NQ_RAISED, "high-rtt"), ev(None, NQ_CLEARED, "high-rtt", "INFO"),
              ev(9, "connection", "disconnect-called", "INFO")]
    [issue] = classify(call(), events, AlertPolicy())
    assert (issue.cleared, issue.duration_s) == (True, 0.0)


def test_naive_and_aware_timestamps_mix() -> None:
    """Naive timestamps are read as UTC rather than breaking the sort."""
    naive = Event(timestamp=datetime(2026, 11, 27, 10, 0, 8), call_sid=CALL_SID,
                  account_sid=ACCOUNT_SID, edge="sdk_edge", group=NQ_CLEARED, name="high-rtt",
                  level="INFO")
    [issue] = classify(call(), [ev(0, NQ_RAISED, "high-rtt"), naive], AlertPolicy())
    assert (issue.cleared, issue.duration_s) == (True, 8.0)


def test_failed_call_without_events_is_an_issue() -> None:
    """A failed call with no events is the call/failed issue carrying the SIP code."""
    failed = call("failed", sip_response_code=404, timestamp="Fri, 27 Nov 2026 10:00:00 +0000")
    alert = build_alert(failed, [], AlertPolicy(min_level="ERROR"), now=NOW)
    assert alert is not None
    [issue] = alert.issues
    assert (issue.key, issue.edge, issue.group, issue.name) == (
        "call/failed", None, "call", "failed")
    assert (issue.level, issue.severity, issue.count, issue.error_code) == (
        "ERROR", "error", 1, 404)
    assert issue.description == "The call could not be completed as dialed (SIP 404)"
    assert issue.first_at == "2026-11-27T10:00:00Z"
    assert alert.severity == "error"


def test_failed_call_without_sip_code() -> None:
    """Without a SipResponseCode the failed issue has no code and a plain description."""
    [issue] = classify(call("failed"), [], AlertPolicy())
    assert (issue.error_code, issue.description, issue.first_at) == (
        None, "The call could not be completed as dialed", None)


@pytest.mark.parametrize("status", ["busy", "no-answer", "canceled", "completed"])
def test_ordinary_outcomes_without_events_have_no_alert(status: str) -> None:
    """busy, no-answer and canceled are outcomes, not issues."""
    assert build_alert(call(status), [], AlertPolicy(), now=NOW) is None


def test_issues_sorted_errors_first_then_time_then_key() -> None:
    """Errors come first, then earlier issues, then keys in order."""
    events = [ev(0, NQ_RAISED, "low-mos"), ev(0, NQ_RAISED, "high-rtt"),
              ev(5, "get-user-media", "failed", "ERROR"), ev(1, "ice-gathering-state", "timeout"),
              ev(9, "connection", "error", "ERROR", code=31005)]
    keys = [i.key for i in classify(call("failed"), events, AlertPolicy())]
    assert keys == [
        "sdk_edge/get-user-media/failed", "sdk_edge/connection/error/31005", "call/failed",
        "sdk_edge/network-quality-warning/high-rtt", "sdk_edge/network-quality-warning/low-mos",
        "sdk_edge/ice-gathering-state/timeout",
    ]


def test_alert_summary_and_severity() -> None:
    """The summary counts errors and warnings and names the call, status and duration."""
    events = [ev(0, "connection", "error", "ERROR", code=31005), ev(1, NQ_RAISED, "high-rtt"),
              ev(2, NQ_RAISED, "high-jitter")]
    alert = build_alert(call(duration_s=42), events, AlertPolicy(), now=NOW)
    assert alert is not None
    assert alert.summary == ("A connection error occurred during the call (the Twilio gateway hung up "
                             f"with an error) (31005); 1 error, 2 warnings on {CALL_SID} (completed, 42 s)")
    assert alert.severity == "error"
    warn_only = build_alert(call(), events[1:], AlertPolicy(), now=NOW)
    assert warn_only is not None and warn_only.severity == "warning"


def test_alert_id_is_stable_across_order_and_reruns() -> None:
    """The same issues give the same alert_id whatever the event order or run."""
    events = [ev(0, NQ_RAISED, "high-rtt"), ev(3, "connection", "error", "ERROR", code=31005),
              ev(5, NQ_CLEARED, "high-rtt", "INFO")]
    first = build_alert(call(), events, AlertPolicy(), now=NOW)
    again = build_alert(call(), list(reversed(events)), AlertPolicy(), now=NOW + timedelta(hours=1))
    more = build_alert(call(), [*events, ev(8, NQ_RAISED, "high-rtt")], AlertPolicy(), now=NOW)
    assert first is not None and again is not None and more is not None
    assert first.alert_id == again.alert_id == more.alert_id
    assert first.alert_id.startswith("alr_")


def test_alert_id_differs_when_issues_differ() -> None:
    """Another set of issues, or another call, gives another alert_id."""
    base = [ev(0, NQ_RAISED, "high-rtt")]
    one = build_alert(call(), base, AlertPolicy(), now=NOW)
    two = build_alert(call(), [*base, ev(1, NQ_RAISED, "low-mos")], AlertPolicy(), now=NOW)
    other_call = Call("CA" + "c3" * 16, ACCOUNT_SID, "completed")
    other = build_alert(other_call, base, AlertPolicy(), now=NOW)
    assert one is not None and two is not None and other is not None
    assert len({one.alert_id, two.alert_id, other.alert_id}) == 3


def test_truncation_keeps_the_first_and_counts_the_rest() -> None:
    """Beyond max_issues the first are kept and the rest counted in truncated_issues."""
    events = [ev(i, "custom", f"thing-{i:02d}") for i in range(7)]
    alert = build_alert(call(), events, AlertPolicy(max_issues=5), now=NOW)
    assert alert is not None
    assert [i.name for i in alert.issues] == [f"thing-{i:02d}" for i in range(5)]
    assert alert.truncated_issues == 2
    assert "; 7 warnings on " in alert.summary
    full = build_alert(call(), events, AlertPolicy(), now=NOW)
    assert full is not None and full.truncated_issues == 0


def test_summary_counts_cut_errors_as_errors() -> None:
    """With more error issues than max_issues, the cut ones still count as errors in the
    summary, also once the alert has been through its envelope (as a delivery job reads it)."""
    from service.analysis.alert import Alert

    events = [ev(i, "connection", "error", "ERROR", code=code)
              for i, code in enumerate((31000, 31001, 31003, 31005, 31009))]
    alert = build_alert(call(), [*events, ev(9, NQ_RAISED, "high-rtt")],
                        AlertPolicy(max_issues=3), now=NOW)
    assert alert is not None and alert.truncated_issues == 3
    assert "; 5 errors, 1 warning on " in alert.summary
    assert Alert.from_envelope(alert.to_envelope()).summary == alert.summary


def test_ignoring_call_failed_silences_failed_calls() -> None:
    """ALERT_IGNORE=call/failed: a failed call alerts only on its SDK issues, if any."""
    policy = AlertPolicy(ignore=frozenset({"call/failed"}))
    assert build_alert(call("failed", sip_response_code=503), [], policy, now=NOW) is None
    errored = build_alert(call("failed"), [ev(0, "connection", "error", "ERROR", code=31005)],
                          policy, now=NOW)
    assert errored is not None
    assert [i.key for i in errored.issues] == ["sdk_edge/connection/error/31005"]


def test_client_prefers_sdk_edge() -> None:
    """The alert's client is the first non-empty ClientInfo, the SDK edge's first."""
    gateway = ClientInfo(city="Ashburn")
    sdk = ClientInfo(sdk_type="twilio-voice-js", sdk_version="2.18.4")
    events = [ev(0, "x", "y", "INFO", edge="client_edge", client=gateway),
              ev(1, "connection", "error", "ERROR", client=ClientInfo()),
              ev(2, "connection", "error", "ERROR", client=sdk)]
    alert = build_alert(call(), events, AlertPolicy(), now=NOW)
    assert alert is not None and alert.client == sdk
    assert first_client(events[:1]) == gateway
    assert first_client([]) is None


def test_envelope_round_trips() -> None:
    """An alert built here survives to_envelope/from_envelope unchanged."""
    from service.analysis.alert import Alert

    events = [ev(0, NQ_RAISED, "high-rtt"), ev(4, NQ_CLEARED, "high-rtt", "INFO")]
    alert = build_alert(call(duration_s=42), events, AlertPolicy(), now=NOW)
    assert alert is not None
    assert Alert.from_envelope(alert.to_envelope()).to_envelope() == alert.to_envelope()


def test_policy_rejects_unknown_levels() -> None:
    """AlertPolicy accepts only WARNING and ERROR (any case)."""
    assert AlertPolicy(min_level="error").min_level == "ERROR"
    with pytest.raises(ValueError, match="min_level"):
        AlertPolicy(min_level="INFO")


def test_long_call_classifies() -> None:
    """A 2,500-event call with many warning cycles classifies to the right counts."""
    events = []
    for i in range(625):
        events += [ev(4 * i, NQ_RAISED, "high-rtt"), ev(4 * i + 1, NQ_CLEARED, "high-rtt", "INFO"),
                   ev(4 * i + 2, "connection", "error", "ERROR", code=53405),
                   ev(4 * i + 3, "ice-candidate", "ice-candidate", "DEBUG")]
    issues = by_key(classify(call(), events, AlertPolicy()))
    rtt = issues["sdk_edge/network-quality-warning/high-rtt"]
    assert (rtt.count, rtt.duration_s, rtt.cleared) == (625, 625.0, True)
    assert issues["sdk_edge/connection/error/53405"].count == 625


def media(at: float, level: str, message: str | None = None) -> Event:
    return ev(at, "connection", "error", level, code=53405, message=message)


def test_recovered_media_reconnection_is_a_cleared_warning() -> None:
    """WARNING 53405, reconnecting, reconnected: one warning with its duration, not a failure."""
    events = [media(10, "WARNING", "ConnectionError (53405): Media connection failed."),
              ev(10, "connection", "reconnecting", "INFO"),
              ev(14.5, "connection", "reconnected", "INFO"),
              ev(40, "connection", "disconnected-by-local", "INFO")]
    [issue] = classify(call(), events, AlertPolicy())
    assert issue.key == "sdk_edge/connection/error/53405"
    assert (issue.severity, issue.level, issue.cleared, issue.duration_s) == (
        "warning", "WARNING", True, 4.5)
    assert "failed" not in (issue.description or "")
    assert "reconnected" in (issue.description or "")
    assert (issue.category, issue.sdk_message) == (
        "media", "ConnectionError (53405): Media connection failed.")


def test_failed_states_during_a_recovered_reconnection_are_part_of_it() -> None:
    """ICE and peer-connection failed states published as a reconnection starts, or while
    it retries, make no error of their own when it recovers."""
    events = [ev(10, "ice-connection-state", "failed", "ERROR"),
              media(10, "WARNING"), ev(10, "connection", "reconnecting", "INFO"),
              ev(10.2, "pc-connection-state", "failed", "WARNING"),
              ev(13, "ice-connection-state", "failed", "ERROR"),
              ev(16, "connection", "reconnected", "INFO")]
    [issue] = classify(call(), events, AlertPolicy())
    assert (issue.key, issue.severity, issue.cleared, issue.duration_s) == (
        "sdk_edge/connection/error/53405", "warning", True, 6.0)


def test_unrecovered_media_reconnection_is_an_error() -> None:
    """A reconnection the SDK gave up (53405 at ERROR) is an error, with its failed states."""
    events = [ev(10, "ice-connection-state", "failed", "ERROR"), media(10, "WARNING"),
              ev(10, "connection", "reconnecting", "INFO"),
              ev(40, "connection", "disconnected-by-local", "INFO"), media(40, "ERROR")]
    issues = by_key(classify(call(), events, AlertPolicy()))
    assert set(issues) == {"sdk_edge/connection/error/53405",
                           "sdk_edge/ice-connection-state/failed"}
    issue = issues["sdk_edge/connection/error/53405"]
    assert (issue.severity, issue.level, issue.count, issue.cleared, issue.duration_s) == (
        "error", "ERROR", 2, False, 30.0)
    assert issue.description == "The media connection failed and was not restored"


def test_call_ending_while_reconnecting_is_an_error() -> None:
    """A reconnection still running when the call ended never recovered: an error."""
    events = [media(10, "WARNING"), ev(10, "connection", "reconnecting", "INFO"),
              ev(20, "connection", "disconnected-by-remote", "INFO")]
    [issue] = classify(call(), events, AlertPolicy())
    assert (issue.severity, issue.level, issue.cleared, issue.duration_s) == (
        "error", "WARNING", False, 10.0)


def test_media_error_without_reconnection_is_a_plain_error() -> None:
    """A 53405 at ERROR with no reconnection before it has no duration and no cleared."""
    [issue] = classify(call(), [media(5, "ERROR")], AlertPolicy())
    assert (issue.severity, issue.duration_s, issue.cleared) == ("error", None, None)


@pytest.mark.parametrize("code", [31002, 31008, 31480, 31486, 31600, 31603])
def test_outcome_codes_make_no_issue_by_default(code: int) -> None:
    """Busy, declined, unavailable and cancelled codes are outcomes: no issue, no alert."""
    events = [ev(3, "connection", "error", "ERROR", code=code)]
    assert classify(call(), events, AlertPolicy()) == []
    assert build_alert(call(), events, AlertPolicy(), now=NOW) is None


def test_alert_outcomes_makes_them_warnings() -> None:
    """With outcomes on, an outcome code is a warning issue of category outcome."""
    events = [ev(3, "connection", "error", "ERROR", code=31486, message="BusyHere (31486): Busy")]
    [issue] = classify(call(), events, AlertPolicy(outcomes=True))
    assert (issue.key, issue.level, issue.severity, issue.category) == (
        "sdk_edge/connection/error/31486", "ERROR", "warning", "outcome")
    assert issue.sdk_message == "BusyHere (31486): Busy"


def test_warning_description_carries_the_event_figures() -> None:
    """A warning with a threshold and values is described with them."""
    raised = Event(timestamp=T0, call_sid=CALL_SID, account_sid=ACCOUNT_SID, edge="sdk_edge",
                   group=NQ_RAISED, name="low-mos", level="WARNING", threshold=3.0,
                   values=(2.9, 2.4, 2.8))
    [issue] = classify(call(), [raised], AlertPolicy())
    assert issue.description == (
        "Mean opinion score (MOS) below the SDK's threshold of 3 (worst sample 2.4)")


def test_warning_level_failed_and_gathering_states_are_warnings() -> None:
    """pc-connection-state/failed at WARNING and ICE gathering failures are warnings."""
    events = [ev(1, "pc-connection-state", "failed", "WARNING"),
              ev(2, "ice-gathering-state", "timeout", "WARNING")]
    issues = classify(call(), events, AlertPolicy())
    assert {(i.key, i.severity, i.category) for i in issues} == {
        ("sdk_edge/pc-connection-state/failed", "warning", "media"),
        ("sdk_edge/ice-gathering-state/timeout", "warning", "media")}


def test_alert_id_ignores_wording_and_new_fields() -> None:
    """The id depends on the CallSid and issue keys only, as before the new fields."""
    from service.analysis.alert import make_alert_id

    alert = build_alert(call(), [ev(0, "connection", "error", "ERROR", code=31005)],
                        AlertPolicy(), now=NOW)
    assert alert is not None
    assert alert.alert_id == make_alert_id(CALL_SID, ["sdk_edge/connection/error/31005"])
    payload = alert.to_payload()["issues"][0]
    assert {"category", "sdk_message"} <= set(payload)


def test_alert_outcomes_setting() -> None:
    """ALERT_OUTCOMES=true reaches the policy; a value that is not a boolean names it."""
    from service.errors import ConfigError
    from service.settings import Settings

    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "t"}
    assert AlertPolicy.from_settings(Settings.from_env(env)).outcomes is False
    on = Settings.from_env({**env, "ALERT_OUTCOMES": "true"})
    assert AlertPolicy.from_settings(on).outcomes is True
    with pytest.raises(ConfigError) as error:
        Settings.from_env({**env, "ALERT_OUTCOMES": "busy"})
    assert error.value.variable == "ALERT_OUTCOMES"


def test_warning_figures_read_from_metric_or_data() -> None:
    """The threshold and values come from sdk_edge.metric, else from sdk_edge.data."""
    from service.insights.events import parse_event

    base = {"edge": "sdk_edge", "group": NQ_RAISED, "name": "high-jitter", "level": "WARNING"}
    metric = parse_event({**base, "sdk_edge": {"metric": {"threshold": 30, "values": [31, 44]}}})
    data = parse_event({**base, "sdk_edge": {"data": {"threshold": 30, "value": 52.5}}})
    odd = parse_event({**base, "sdk_edge": {"metric": {"threshold": "x", "values": "y"}}})
    assert (metric.threshold, metric.values) == (30.0, (31.0, 44.0))
    assert (data.threshold, data.values) == (30.0, (52.5,))
    assert (odd.threshold, odd.values) == (None, ())


def test_recovered_reconnection_is_no_error_with_min_level_error() -> None:
    """ALERT_MIN_LEVEL=ERROR: a recovered reconnection, ICE failed states included, is silent."""
    events = [ev(10, "ice-connection-state", "failed", "ERROR"), media(10, "WARNING"),
              ev(10, "connection", "reconnecting", "INFO"),
              ev(12, "connection", "reconnected", "INFO")]
    assert classify(call(), events, AlertPolicy(min_level="ERROR")) == []


def test_reconnection_during_set_up_recovers_on_ice_connected() -> None:
    """During set-up the SDK publishes no reconnected; ICE connected again is the recovery."""
    events = [ev(0, "ice-gathering-state", "timeout", "WARNING"), media(0, "WARNING"),
              ev(0, "connection", "reconnecting", "INFO"),
              ev(2, "ice-connection-state", "connected", "DEBUG"),
              ev(30, "connection", "disconnected-by-local", "INFO")]
    issues = by_key(classify(call(), events, AlertPolicy()))
    media_issue = issues["sdk_edge/connection/error/53405"]
    assert (media_issue.severity, media_issue.cleared, media_issue.duration_s) == (
        "warning", True, 2.0)
