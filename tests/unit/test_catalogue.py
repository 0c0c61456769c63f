"""The error-code and SDK-event catalogue: coverage of the reference and categories."""

from __future__ import annotations

import pytest

from service.analysis import catalogue

#: Every code listed in reference/twilio.md section 4.
REFERENCE_CODES = [
    20101, 20104, 20151, 31000, 31001, 31002, 31003, 31005, 31006, 31008, 31009,
    31100, 31101, 31102, 31103, 31104, 31105, 31107, 31201, 31202, 31203, 31204, 31205,
    31206, 31207, 31208, 31209, 31210, 31212, 31400, 31401, 31402, 31404, 31429, 31480,
    31481, 31486, 31600, 31603, 31604, 53000, 53001, 53400, 53402, 53405,
]


def test_every_reference_code_is_catalogued() -> None:
    """Each code of the reference has a name, a one-line meaning and a category."""
    assert set(catalogue.ERROR_CODES) == set(REFERENCE_CODES)
    for code in REFERENCE_CODES:
        entry = catalogue.lookup(code)
        assert entry is not None and entry.code == code and entry.name
        assert entry.meaning and "\n" not in entry.meaning
        assert entry.category in catalogue.CATEGORIES


@pytest.mark.parametrize(("code", "expected"), [
    (31401, "device"), (31402, "device"), (31208, "device"),
    (53000, "network"), (53001, "network"), (31005, "network"), (31009, "network"),
    (31003, "network"), (53405, "media"), (53400, "media"),
    (31201, "auth"), (31205, "auth"), (20101, "auth"), (20104, "auth"), (20151, "auth"),
    (31002, "outcome"), (31008, "outcome"), (31480, "outcome"), (31486, "outcome"),
    (31600, "outcome"), (31603, "outcome"), (31404, "other"), (31000, "other"),
])
def test_categories(code: int, expected: str) -> None:
    """Codes fall in the DESIGN's categories; only the six ending codes are outcomes."""
    assert catalogue.category(code) == expected
    assert catalogue.is_outcome(code) == (expected == "outcome")


def test_unknown_and_missing_codes() -> None:
    """Unknown or missing codes have no description and category other."""
    for code in (None, 0, 39999):
        assert catalogue.describe(code) is None
        assert catalogue.category(code) == "other"
        assert catalogue.lookup(code) is None


def test_meanings_follow_the_sdk_error_classes() -> None:
    """31005 is a connection error during the call (a gateway HANGUP), 31003 a signalling
    timeout, 31201 an authorization error (a microphone error in twilio.js 1.x)."""
    assert catalogue.describe(31005) == (
        "A connection error occurred during the call (the Twilio gateway hung up with an error)")
    assert "timeout" in (catalogue.describe(31003) or "")
    assert "ICE" not in (catalogue.describe(31003) or "")
    assert "Authorization error" in (catalogue.describe(31201) or "")
    assert "microphone" in (catalogue.describe(31201) or "")
    assert catalogue.describe(53405) == "The media connection failed and was not restored"


@pytest.mark.parametrize(("group", "names"), [
    ("network-quality-warning-raised", ["high-rtt", "low-mos", "high-jitter", "high-packet-loss",
                                        "high-packets-lost-fraction", "low-bytes-received",
                                        "low-bytes-sent", "ice-connectivity-lost"]),
    ("audio-level-warning-raised", ["constant-audio-input-level", "constant-audio-output-level"]),
    ("audio", ["ringtone-devices-set-failed", "speaker-devices-set-failed"]),
    ("connection", ["listening-error", "error"]),
    ("pc-connection-state", ["failed"]),
    ("ice-gathering-state", ["none", "timeout"]),
    ("ice-connection-state", ["failed"]),
    ("get-user-media", ["failed", "denied"]),
    ("registration", ["unsupported-cancel-message-error", "registration-error",
                      "unregistration-error", "unregistration-registration-error"]),
    ("dtls-transport-state", ["failed"]),
    ("call-message", ["error"]),
])
def test_every_warning_and_error_event_is_described(group: str, names: list[str]) -> None:
    """Each WARNING/ERROR SDK event of reference 3.4 has a one-line description."""
    for name in names:
        text = catalogue.describe_event(group, name)
        assert text and "\n" not in text


def test_warning_descriptions_use_the_event_figures() -> None:
    """A quality warning quotes its own threshold and worst sample, else the SDK's threshold."""
    raised = "network-quality-warning-raised"
    assert catalogue.describe_event(raised, "high-rtt", 400, (380, 512.5, 468)) == (
        "Round-trip time (RTT) above the SDK's threshold of 400 ms (worst sample 512.5 ms)")
    assert catalogue.describe_event(raised, "low-mos", 3, (2.61, 3.2, 2.9)) == (
        "Mean opinion score (MOS) below the SDK's threshold of 3 (worst sample 2.61)")
    assert catalogue.describe_event(raised, "high-jitter") == (
        "Jitter above the SDK's threshold")
    assert catalogue.describe_event(raised, "low-mos") == (
        "Mean opinion score (MOS) below the SDK's threshold")
    assert "3 of the last 5" not in (catalogue.describe_event(raised, "high-packet-loss") or "")


def test_unknown_event_has_no_description() -> None:
    """Informational or unknown events have no description."""
    assert catalogue.describe_event("connection", "accepted-by-remote") is None
    assert catalogue.describe_event(None, None) is None


def test_event_categories() -> None:
    """Events take their code's category when known, else their group's."""
    assert catalogue.event_category("get-user-media", "denied") == "device"
    assert catalogue.event_category("audio-level-warning-raised",
                                    "constant-audio-input-level") == "device"
    assert catalogue.event_category("ice-connection-state", "failed") == "media"
    assert catalogue.event_category("pc-connection-state", "failed") == "media"
    assert catalogue.event_category("network-quality-warning-raised", "ice-connectivity-lost") == (
        "media")
    assert catalogue.event_category("network-quality-warning-raised", "high-rtt") == "network"
    assert catalogue.event_category("connection", "error", 31401) == "device"
    assert catalogue.event_category("connection", "error", 31486) == "outcome"
    assert catalogue.event_category("call-message", "error") == "other"
    assert catalogue.event_category("something-new", "odd") == "other"
