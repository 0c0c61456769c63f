"""The corpus: calls shaped as twilio-voice.js publishes them, each with the alert a person
would expect (tests/data/corpus/*.json: the Events API page plus ``call`` and ``expected``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.analysis.classifier import AlertPolicy, build_alert
from service.calls import Call
from service.insights.events import parse_events

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
FILES = sorted(CORPUS.glob("*.json"))
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PAGE_META = {"page", "page_size", "first_page_url", "previous_page_url", "next_page_url",
             "key", "url"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def alert_of(doc: dict[str, Any], policy: AlertPolicy) -> dict[str, Any]:
    """The alert the classifier builds for a corpus call, as a receiver gets it."""
    events = parse_events(doc["events"])
    call = Call(call_sid=str(events[0].call_sid), account_sid=str(events[0].account_sid),
                status=doc["call"]["status"], from_=doc["call"]["from"], to=doc["call"]["to"])
    alert = build_alert(call, events, policy, now=NOW)
    return alert.to_payload() if alert else {"severity": "none", "issues": []}


def assert_expected(payload: dict[str, Any], expected: dict[str, Any]) -> None:
    assert payload["severity"] == expected["alert"]
    got = {issue["key"]: issue for issue in payload["issues"]}
    assert set(got) == {issue["key"] for issue in expected["issues"]}
    for want in expected["issues"]:
        issue = got[want["key"]]
        assert (issue["severity"], issue["cleared"]) == (want["severity"], want["cleared"]), \
            want["key"]
        if "count" in want:
            assert issue["count"] == want["count"], want["key"]


def test_the_corpus_covers_the_sdk_stories() -> None:
    """At least ten sequences, each a complete Events API page with a story and its source."""
    assert len(FILES) >= 10
    for path in FILES:
        doc = load(path)
        assert set(doc["meta"]) == PAGE_META and doc["meta"]["next_page_url"] is None
        assert doc["story"] and doc["sdk_source"] and doc["events"]
        assert doc["expected"]["alert"] in ("none", "warning", "error")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_call_gives_the_expected_alert(path: Path) -> None:
    """The classifier's alert for each corpus call: severity, issue keys, severities, cleared."""
    doc = load(path)
    payload = alert_of(doc, AlertPolicy())
    assert_expected(payload, doc["expected"])
    issues = {issue["key"]: issue for issue in payload["issues"]}
    for key, seconds in doc.get("expected_durations", {}).items():
        assert issues[key]["duration_s"] == pytest.approx(seconds), key
    for key, text in doc.get("expected_descriptions", {}).items():
        assert issues[key]["description"] == text, key
    for key, text in doc.get("expected_sdk_messages", {}).items():
        assert issues[key]["sdk_message"] == text, key
    for issue in payload["issues"]:
        assert issue["category"] in ("device", "network", "media", "auth", "outcome", "other",
                                     "voice-agent")
        assert issue["description"], issue["key"]
        if issue["error_code"] == 53405 and issue["severity"] == "warning":  # recovered
            assert "fail" not in (issue["description"] or "").lower(), issue["key"]


@pytest.mark.parametrize("path", [p for p in FILES if "expected_with_outcomes" in load(p)],
                         ids=lambda p: p.stem)
def test_corpus_outcomes_with_alert_outcomes(path: Path) -> None:
    """With ALERT_OUTCOMES, busy and declined callees become warnings of category outcome."""
    doc = load(path)
    payload = alert_of(doc, AlertPolicy(outcomes=True))
    assert_expected(payload, doc["expected_with_outcomes"])
    assert {issue["category"] for issue in payload["issues"]} == {"outcome"}


def test_corpus_pages_are_read_by_callwatch_classify(capsys: pytest.CaptureFixture[str]) -> None:
    """Each corpus file is itself a page ``callwatch classify`` reads without a warning."""
    from service.cli import main

    for path in FILES:
        assert main(["classify", str(path)]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        expected = load(path)["expected"]["alert"]
        assert out.startswith("no alert" if expected == "none" else expected.upper()), path.stem


SUMMARIES = sorted((CORPUS / "summaries").glob("*.json"))


@pytest.mark.parametrize("path", SUMMARIES, ids=[p.stem for p in SUMMARIES])
def test_call_summary_gives_the_expected_warnings(path: Path) -> None:
    """Each Call Summary page (a carrier or SIP leg) gives its expected warnings and categories."""
    from service.analysis.summary_tags import summary_issues
    from service.insights.summary import parse_summary

    doc = load(path)
    assert doc["story"] and doc["source"] and doc["summary"]["processing_state"]
    summary = parse_summary(doc["summary"]["call_sid"], doc["summary"])
    call = Call(call_sid=summary.call_sid, account_sid=doc["summary"]["account_sid"],
                status="completed", from_=doc["summary"]["from"]["caller"],
                to=doc["summary"]["to"]["callee"])
    alert = build_alert(call, [], AlertPolicy(), now=NOW, extra=summary_issues(summary))
    assert alert is not None and alert.severity == doc["expected"]["alert"]
    assert [(i.key, i.category, i.severity) for i in alert.issues] == [
        (want["key"], want["category"], "warning") for want in doc["expected"]["issues"]]
    assert all(i.description for i in alert.issues)
