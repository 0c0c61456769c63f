"""Call Summary tags of carrier and SIP legs: which become warnings, in which category."""

from __future__ import annotations

from service.analysis.summary_tags import summary_issues
from service.insights.summary import CallSummary, parse_summary

SID = "CA" + "c" * 32


def test_the_five_tags_become_warnings_with_categories() -> None:
    """high_jitter, high_packet_loss, high_latency, high_pdd: network; silence: media."""
    tags = ("high_jitter", "high_packet_loss", "high_latency", "high_pdd", "silence")
    issues = summary_issues(CallSummary(SID, "partial", "carrier",
                                        tuple(("carrier_edge", t) for t in tags)))
    assert [(i.key, i.category, i.severity) for i in issues] == [
        ("carrier_edge/summary/high_jitter", "network", "warning"),
        ("carrier_edge/summary/high_packet_loss", "network", "warning"),
        ("carrier_edge/summary/high_latency", "network", "warning"),
        ("carrier_edge/summary/high_pdd", "network", "warning"),
        ("carrier_edge/summary/silence", "media", "warning")]
    assert all(i.description for i in issues)


def test_other_tags_min_level_and_ignore() -> None:
    """Unknown tags make no issue; ALERT_MIN_LEVEL=ERROR none; ALERT_IGNORE=summary/<tag>."""
    summary = CallSummary(SID, "complete", "sip",
                          (("sip_edge", "high_jitter"), ("sip_edge", "some_new_tag")))
    assert [i.key for i in summary_issues(summary)] == ["sip_edge/summary/high_jitter"]
    assert summary_issues(summary, min_level="ERROR") == []
    assert summary_issues(summary, ignore=frozenset({"summary/high_jitter"})) == []


def test_tags_are_read_from_the_top_level_and_each_gateway_edge_once() -> None:
    """Top-level tags go to the call type's edge; edge and per-stream tags are merged, once."""
    page = {"call_type": "trunking", "processing_state": "partial", "tags": ["high_pdd"],
            "carrier_edge": {"metrics": {"inbound": {"tags": ["high_jitter"]}}},
            "sip_edge": {"tags": ["high_pdd"], "metrics": {"outbound": {"tags": ["silence"]}}},
            "sdk_edge": None}
    summary = parse_summary(SID, page)
    assert summary.processing_state == "partial"
    assert summary.tags == (("carrier_edge", "high_jitter"), ("sip_edge", "high_pdd"),
                            ("sip_edge", "silence"))


def test_a_summary_of_nulls_has_no_tags() -> None:
    """Every field of Twilio's summary is nullable: nulls read as nothing, never an error."""
    assert parse_summary(SID, {"tags": None, "carrier_edge": None, "call_type": None}).tags == ()


def test_a_long_tag_repeated_is_kept_once() -> None:
    """A tag over 64 characters is cut, and a repeat of it is still the same tag (kept once)."""
    long_tag = "x" * 100
    page = {"call_type": "carrier", "carrier_edge": {"tags": [long_tag],
                                                     "metrics": {"inbound": {"tags": [long_tag]}}}}
    assert parse_summary(SID, page).tags == (("carrier_edge", "x" * 64),)
