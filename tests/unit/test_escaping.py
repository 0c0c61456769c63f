"""Text a caller or Twilio controls never becomes a link, a mention, a heading or a header."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from devtools.sample_alerts import sample_alert
from devtools.teams_standin import shown
from service.analysis.alert import Alert
from service.delivery.sinks import escaping
from service.delivery.sinks.email import email_html, email_message
from service.delivery.sinks.slack_blocks import slack_message
from service.delivery.sinks.teams import teams_message
from service.insights.events import ClientInfo

#: What a caller can put in a ``client:`` identity, or Twilio in an SDK message.
HOSTILE = ("<@U024BE7LH> <!here> <!channel> <http://evil.example/x|click here> "
           "[pay now](http://evil.example/pay) https://evil.example/login www.evil.example "
           "call +1 (415) 555-0123 *urgent* _now_ # Heading <b>bold</b> & co")


def _hostile_alert() -> Alert:
    alert = sample_alert(description=HOSTILE)
    return replace(alert, call=replace(alert.call, from_="client:" + HOSTILE),
                   client=ClientInfo(sdk_type="twilio-voice-js", city=HOSTILE, country_code="US"),
                   summary="")


def _strings(value: object) -> list[str]:
    """Every string inside a JSON-like value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_slack_text_makes_no_link_or_mention() -> None:
    """In every mrkdwn text of the Slack message, ``<``, ``>`` and ``&`` are escaped and no
    bare URL or host name is left for Slack to link; the words are all still there."""
    message = slack_message(_hostile_alert())
    texts = [message["text"], *_strings(message["blocks"])]
    for text in texts:
        assert "<" not in text and ">" not in text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text)
        assert "://" not in text and "evil.example" not in text
    joined = "\n".join(texts).replace("\u2060", "")
    assert "&lt;@U024BE7LH&gt; &lt;!here&gt;" in joined
    assert "&lt;http://evil.example/x|click here&gt;" in joined


def test_slack_escape_is_applied_once() -> None:
    """An already escaped-looking text is escaped again, not trusted: ``&lt;`` shows as typed."""
    assert escaping.slack("&lt;!here&gt;") == "&amp;lt;!here&amp;gt;"


@pytest.mark.parametrize("text", [
    "[pay now](http://evil.example/pay)", "https://evil.example/login", "www.evil.example",
    "<http://evil.example>", "+1 (415) 555-0123", "4155550123", "# Heading", "*urgent* _now_",
    "- item", "1. first", "> quote", "`code`", "~~gone~~", "![img](http://evil.example/a.png)",
])
def test_teams_text_reads_the_same_and_links_nothing(text: str) -> None:
    """Each markdown or link form comes out inert (escaped markers, broken schemes, host
    names and phone digits) and reads exactly as the caller typed it."""
    out = escaping.teams(text)
    assert shown(out) == text
    assert "](" not in out and "://" not in out and "evil.example" not in out
    assert not re.search(r"(?<!\\)[*_`~#\[\]<>!]", out)  # every marker escaped
    assert not re.search(r"\d{2}", out)  # no two digits together: no phone number to dial
    assert not re.match(r"\s*([-+>]|\d+\.)", out)  # no list or quote at the line's start


def test_teams_card_carries_no_live_link() -> None:
    """The whole Teams card for the hostile alert: no link syntax, URL, host name or phone
    number left as such, and the card still reads the caller's text."""
    message = teams_message(_hostile_alert())
    raw = json.dumps(message, ensure_ascii=False)
    card_texts = _strings(message["attachments"][0]["content"]["body"])
    for text in card_texts:
        assert "](" not in text and "://" not in text and "evil.example" not in text
        assert "415" not in text.replace("\u2060", "") or "4\u20601\u20605" in text
    assert "http://adaptivecards.io" in raw  # the schema URL is ours, untouched
    assert "[pay now](http://evil.example/pay)" in shown("\n".join(card_texts))


def test_email_html_escapes_everything() -> None:
    """The HTML part holds no tag or attribute from the caller: ``<``, ``>``, ``&`` and
    quotes are escaped wherever the hostile text appears."""
    alert = replace(_hostile_alert(), issues=tuple(
        replace(issue, key='sdk_edge/"><script>alert(1)</script>') for issue in sample_alert().issues))
    body = email_html(alert)
    assert "<b>bold</b>" not in body and "<script>" not in body and '"><' not in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body and "&amp; co" in body
    assert "&lt;script&gt;" in body


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\x0b", "\x85", "\u2028", "\x00"])
def test_email_subject_cannot_start_a_header(breaker: str) -> None:
    """A caller identity with CR/LF (or any other line break) stays inside one Subject line:
    no ``Bcc`` header appears and the message serialises."""
    alert = sample_alert()
    identity = f"client:mallory{breaker}Bcc: victim@example.com{breaker}{breaker}body"
    alert = replace(alert, call=replace(alert.call, from_=identity), summary="")
    message = email_message(alert, "callwatch@example.com", ["ops@example.com"])
    raw = message.as_bytes()
    assert message["Bcc"] is None
    headers = raw.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n")
    assert not any(line.startswith(b"Bcc") for line in headers.split(b"\n"))
    assert "mallory Bcc: victim@example.com body" in str(message["Subject"])


def test_header_text_is_one_line() -> None:
    """``header_text`` turns every control and line-separator character into one space."""
    assert escaping.header_text("a\r\nb\tc\u2029d\x7fe  f") == "a b c d e f"
