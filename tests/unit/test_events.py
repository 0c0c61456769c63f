"""The event model reads Insights events leniently (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.insights.events import ClientInfo, Event, parse_event, parse_events, parse_timestamp

SPEC_ERROR_EVENT = {
    "timestamp": "2019-09-19T22:15:23Z",
    "call_sid": "CA03a02b156c6faa96c86906f7e9ad0f38",
    "account_sid": "AC998c10b68cbfda9f67277f7d8f4439c9",
    "edge": "sdk_edge",
    "group": "connection",
    "name": "error",
    "level": "ERROR",
    "sdk_edge": {
        "error": {"code": 31600},
        "metadata": {
            "client_name": "GTI9300323095d271b890c91568931321395",
            "location": {"lat": 37.4192, "lon": -122.0574},
            "city": "Mountain View",
            "country_code": "US",
            "country_subdivision": "California",
            "ip_address": "108.177.7.83",
            "sdk": {
                "type": "twilio-voice-android", "version": "4.5.1", "platform": "android",
                "selected_region": "gll", "os": {"name": "android", "version": "4.3"},
                "device": {"model": "GT-I9300", "type": "GT-I9300", "vendor": "samsung",
                           "arch": "armeabi-v7a"},
            },
        },
    },
    "client_edge": None,
    "carrier_edge": None,
    "sip_edge": None,
}

# The spec's Conversation Relay examples: null edge and level, one without "edge" at all.
RELAY_EVENTS = [
    {"timestamp": "2019-09-19T22:15:23Z", "call_sid": "CA03a02b156c6faa96c86906f7e9ad0f38",
     "account_sid": "AC998c10b68cbfda9f67277f7d8f4439c9", "name": "configurations",
     "group": "conversation_relay", "sdk_edge": None, "sip_edge": None, "client_edge": None,
     "carrier_edge": None, "level": None, "edge": None},
    {"timestamp": "2019-09-19T22:15:23Z", "call_sid": "CA03a02b156c6faa96c86906f7e9ad0f38",
     "account_sid": "AC998c10b68cbfda9f67277f7d8f4439c9", "name": "final_token_received",
     "group": "conversation_relay", "sdk_edge": None, "sip_edge": None, "client_edge": None,
     "carrier_edge": None, "level": None},
    {"timestamp": "2019-09-19T22:15:23Z", "call_sid": "CA03a02b156c6faa96c86906f7e9ad0f38",
     "account_sid": "AC998c10b68cbfda9f67277f7d8f4439c9", "name": "error",
     "group": "conversation_relay", "edge": None, "carrier_edge": None, "level": "ERROR",
     "sdk_edge": None, "sip_edge": None, "client_edge": None},
]


def test_spec_error_event_is_read_whole() -> None:
    """The spec's sdk_edge example yields its identifiers, level, error code and client."""
    event = parse_event(SPEC_ERROR_EVENT)
    assert event == Event(
        timestamp=datetime(2019, 9, 19, 22, 15, 23, tzinfo=UTC),
        call_sid="CA03a02b156c6faa96c86906f7e9ad0f38",
        account_sid="AC998c10b68cbfda9f67277f7d8f4439c9",
        edge="sdk_edge", group="connection", name="error", level="ERROR",
        error_code=31600, error_message=None,
        client=ClientInfo(sdk_type="twilio-voice-android", sdk_version="4.5.1",
                          platform="android", os_name="android", os_version="4.3",
                          device_model="GT-I9300", device_vendor="samsung",
                          city="Mountain View", country_code="US"),
    )
    assert event.level_rank == 4


def test_conversation_relay_events_with_null_or_missing_edge_and_level() -> None:
    """Relay events with null or absent edge/level parse, keeping group, name and level."""
    events = parse_events(RELAY_EVENTS)
    assert [(e.edge, e.group, e.name, e.level) for e in events] == [
        (None, "conversation_relay", "configurations", None),
        (None, "conversation_relay", "final_token_received", None),
        (None, "conversation_relay", "error", "ERROR"),
    ]
    assert [e.level_rank for e in events] == [0, 0, 4]
    assert all(e.client is None and e.error_code is None for e in events)


def test_an_empty_object_parses_to_all_none() -> None:
    """An event with no keys at all is still an event, every field None."""
    event = parse_event({})
    assert event == Event(timestamp=None, call_sid=None, account_sid=None, edge=None,
                          group=None, name=None, level=None)


def test_extra_keys_are_ignored() -> None:
    """Keys Twilio may add later do not break parsing."""
    raw = {**SPEC_ERROR_EVENT, "brand_new_field": {"x": 1}, "voice_trace": True}
    assert parse_event(raw) == parse_event(SPEC_ERROR_EVENT)


def test_unknown_level_is_kept_and_ranks_lowest() -> None:
    """A level outside the enum is kept (upper-cased) and ranks with UNKNOWN."""
    event = parse_event({**SPEC_ERROR_EVENT, "level": "critical"})
    assert event.level == "CRITICAL"
    assert event.level_rank == 0


def test_lower_case_level_is_normalised() -> None:
    """voice.js upper-cases levels; a lower-case one reads the same."""
    assert parse_event({"level": "warning"}).level == "WARNING"


def test_error_code_as_string_and_message_are_read() -> None:
    """sdk_edge.error.code given as a string still yields an int, with the message."""
    event = parse_event({"sdk_edge": {"error": {"code": "53405", "message": "ICE failed"}}})
    assert (event.error_code, event.error_message) == (53405, "ICE failed")


def test_unreadable_error_code_and_odd_sdk_edge_are_tolerated() -> None:
    """A non-numeric code, a boolean code or a non-object sdk_edge give no code, no crash."""
    assert parse_event({"sdk_edge": {"error": {"code": "abc"}}}).error_code is None
    assert parse_event({"sdk_edge": {"error": {"code": True}}}).error_code is None
    assert parse_event({"sdk_edge": "oops"}).client is None


def test_metadata_without_known_fields_gives_no_client() -> None:
    """Metadata that says nothing about the device yields client None, not an empty one."""
    assert parse_event({"sdk_edge": {"metadata": {"client_name": "x"}}}).client is None


def test_parse_events_skips_non_objects() -> None:
    """A page's list with stray non-object entries keeps only the objects."""
    events = parse_events([SPEC_ERROR_EVENT, None, "text", 3, {"name": "x"}])
    assert [e.name for e in events] == ["error", "x"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-09-19T22:15:23Z", datetime(2019, 9, 19, 22, 15, 23, tzinfo=UTC)),
        ("2026-11-27T10:15:00.123Z", datetime(2026, 11, 27, 10, 15, 0, 123000, tzinfo=UTC)),
        ("2026-11-27T12:15:00+02:00",
         datetime(2026, 11, 27, 12, 15, tzinfo=timezone(timedelta(hours=2)))),
        ("", None),
        ("yesterday", None),
        (None, None),
        (1574201723, None),
    ],
)
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    """ISO-8601 with Z, fractions or offsets parses; anything else is None."""
    assert parse_timestamp(value) == expected


def test_unreadable_timestamp_keeps_the_event() -> None:
    """An event with an unreadable timestamp is kept with timestamp None."""
    event = parse_event({**SPEC_ERROR_EVENT, "timestamp": "not a time"})
    assert event.timestamp is None
    assert event.name == "error"
