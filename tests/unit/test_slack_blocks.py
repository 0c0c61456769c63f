"""The Slack message: Slack's limits, the text fallback, mrkdwn escaping, valid Block Kit."""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import Block

from devtools.sample_alerts import sample_alert
from devtools.standins import slack_payload_problem
from service.delivery.sinks.slack_blocks import escape, shorten, slack_message

LONG = ("Audio packets were lost & the <remote> side could not hear the caller. " * 80)[:5000]


def _texts(message: dict[str, Any]) -> list[str]:
    texts = []
    for block in message["blocks"]:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts.extend(element["text"] for element in block.get("elements", []))
    return texts


def test_two_hundred_long_issues_stay_within_limits() -> None:
    """200 issues with 5,000-character descriptions: ≤50 blocks, short sections and header."""
    message = slack_message(sample_alert(issues=200, description=LONG))
    blocks = message["blocks"]
    assert len(blocks) <= 50
    header = [b for b in blocks if b["type"] == "header"]
    assert len(header) == 1 and len(header[0]["text"]["text"]) <= 150
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    assert slack_payload_problem(message) is None


def test_what_does_not_fit_is_summarised() -> None:
    """Issues beyond the block budget are counted in one closing line."""
    message = slack_message(sample_alert(issues=200))
    shown = sum(1 for b in message["blocks"] if b["type"] == "section") - 1  # minus the call
    summary = [t for t in _texts(message) if t.startswith("…and ")]
    assert summary == [f"…and {200 - shown} more issues (the webhook payload lists what "
                       "callwatch kept)"]


def test_issues_dropped_upstream_are_counted_too() -> None:
    """``truncated_issues`` from the classifier shows in the summary line."""
    message = slack_message(sample_alert(issues=2, truncated_issues=12))
    assert any(t.startswith("…and 12 more issues") for t in _texts(message))


def test_small_alert_has_no_summary_line() -> None:
    """When everything fits, every issue has its own section and nothing is summarised."""
    message = slack_message(sample_alert(issues=3))
    sections = [b for b in message["blocks"] if b["type"] == "section"]
    assert len(sections) == 4  # the call and three issues
    assert not any(t.startswith("…and") for t in _texts(message))


def test_long_description_cut_at_a_word_with_ellipsis() -> None:
    """A long meaning ends on a whole word and an ellipsis, never mid-word or mid-escape."""
    message = slack_message(sample_alert(issues=1, description=LONG))
    issue = message["blocks"][2]["text"]["text"]
    line = next(part for part in issue.split("\n") if part.startswith("Audio"))
    assert line.endswith("…")
    last_word = line[:-1].split(" ")[-1]
    assert last_word in escape(LONG).split(" ")
    assert not re.search(r"&[a-z]*…", line)


def test_shorten_never_splits_an_escape() -> None:
    """Hard cuts of one long word drop a partial ``&amp;`` rather than leave half of it."""
    text = escape("x" * 8 + "&" * 10)
    cut = shorten(text, 12)
    assert len(cut) <= 12 and cut.endswith("…")
    assert re.fullmatch(r"x*(&amp;)*…", cut)


def test_text_fallback_names_severity_and_call_sid() -> None:
    """The notification text says error/warning and the CallSid."""
    alert = sample_alert()
    text = slack_message(alert)["text"]
    assert "error" in text and alert.call.call_sid in text
    assert text.startswith(":rotating_light:")
    warning_only = sample_alert(issues=0)
    assert "warning" in slack_message(warning_only)["text"]


def test_mrkdwn_is_escaped() -> None:
    """``&``, ``<`` and ``>`` from events cannot become Slack links or mentions."""
    message = slack_message(sample_alert(issues=1, description="<!channel> & <http://x|y>"))
    issue = message["blocks"][2]["text"]["text"]
    assert "&lt;!channel&gt; &amp; &lt;http:\u2060//x|y&gt;" in issue
    assert "<!channel>" not in str(message)


def test_call_and_client_are_shown() -> None:
    """The call's status, direction, parties (the number masked as in the logs) and duration,
    and the client's SDK and place."""
    texts = "\n".join(_texts(slack_message(sample_alert())))
    assert "4155550123" not in texts
    for expected in ("completed", "outbound-api", "*From* alice", "+1********23", "42 s",
                     "twilio-voice-js 2.18.4", "macOS 15.1", "Oakland, US", "Error 31005"):
        assert expected in texts


def test_blocks_parse_with_slack_sdk_models() -> None:
    """Every block parses with slack_sdk's Block Kit models and passes their validation."""
    message = slack_message(sample_alert(issues=200, description=LONG))
    for raw in message["blocks"]:
        block = Block.parse(raw)
        assert block is not None
        block.validate_json()
        assert block.to_dict() == raw
