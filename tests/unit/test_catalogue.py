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
    (31401, "device/permission"), (31402, "device/permission"), (31208, "device/permission"),
    (53000, "signaling/network"), (53001, "signaling/network"), (31005, "signaling/network"),
    (31009, "signaling/network"), (53405, "media/ICE"), (31003, "media/ICE"),
    (31201, "auth/token"), (31205, "auth/token"), (20101, "auth/token"), (20104, "auth/token"),
    (20151, "auth/token"), (31486, "call outcome"), (31600, "call outcome"),
    (31603, "call outcome"), (31404, "call outcome"), (31000, "other"),
])
def test_categories_follow_the_suggested_classification(code: int, expected: str) -> None:
    """Codes fall in the categories reference/twilio.md suggests."""
    assert catalogue.category(code) == expected


def test_unknown_and_missing_codes() -> None:
    """Unknown or missing codes have no description and category other."""
    for code in (None, 0, 39999):
        assert catalogue.describe(code) is None
        assert catalogue.category(code) == "other"
        assert catalogue.lookup(code) is None


def test_describe_gives_the_meaning() -> None:
    """describe returns the code's one-line meaning."""
    assert catalogue.describe(31005) == "The signalling WebSocket ended unexpectedly"
    assert catalogue.describe(53405) == "The media connection failed: ICE found no working path"


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


def test_high_rtt_description() -> None:
    """high-rtt reads as the brief's example."""
    assert catalogue.describe_event("network-quality-warning-raised", "high-rtt") == (
        "Round-trip time above 400 ms in 3 of the last 5 samples")


def test_unknown_event_has_no_description() -> None:
    """Informational or unknown events have no description."""
    assert catalogue.describe_event("connection", "accepted-by-remote") is None
    assert catalogue.describe_event(None, None) is None


def test_event_categories() -> None:
    """Events take their code's category when known, else their group's."""
    assert catalogue.event_category("get-user-media", "denied") == "device/permission"
    assert catalogue.event_category("ice-connection-state", "failed") == "media/ICE"
    assert catalogue.event_category("network-quality-warning-raised", "ice-connectivity-lost") == (
        "media/ICE")
    assert catalogue.event_category("network-quality-warning-raised", "high-rtt") == (
        "signaling/network")
    assert catalogue.event_category("connection", "error", 31401) == "device/permission"
    assert catalogue.event_category("something-new", "odd") == "other"
