"""Text a caller or Twilio controls, made inert for each format a sink writes.

An identity (``client:<anything>``), a city, an SDK message or a description carrying
a value is data, never markup: whatever it holds, it must not become a link, a
mention, a heading or an e-mail header in what a receiver shows.

- ``slack``: Slack mrkdwn reserves ``&``, ``<`` and ``>``; escaping them stops
  ``<http://x|y>``, ``<@U123>`` and ``<!here>`` (Slack's own rule). Slack also links a
  bare ``https://…`` or ``example.com`` by itself: a word joiner (U+2060) inside it
  stops that too.
- ``teams``: a Teams card's TextBlock and FactSet speak a markdown subset. Markdown's
  markers are backslash-escaped (``[x](http://…)`` shows as text), and what Teams would
  turn into a live link by itself (``https://``, ``example.com``, a phone number) gets
  an invisible word joiner (U+2060) inside it, so it reads the same and links nowhere.
- ``header_text``: one line for an e-mail header: CR, LF and every other control or
  line-separator character become a space, so no text can start a header of its own.
"""

from __future__ import annotations

import re

#: Invisible, and breaks the patterns link detectors look for.
WORD_JOINER = "\u2060"

_TEAMS_MARKERS = re.compile(r"([\\`*_~\[\]()<>|!#])")
_TEAMS_LINE_START = re.compile(r"(?m)^(\s*)([-+=]|(?:\d\u2060?)+[.)])")
_SCHEME = re.compile(r"(?i)([a-z][a-z0-9+.-]*):(?=//)")
#: A dot a link detector would read as part of a host name (``evil.example``), not ``15.1``.
_DOTTED = re.compile(r"(?<=[0-9A-Za-z])\.(?=[A-Za-z]{2})")
_AT = re.compile(r"(?<=\S)@(?=\S)")
#: Seven digits or more, alone or with separators (``+1 (415) 555-0123``), not inside a word
#: such as a CallSid.
_PHONE_LIKE = re.compile(r"(?<![0-9A-Za-z])\+?\d(?:[\d\s().-]*\d){6,}(?![0-9A-Za-z])")
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def slack(text: str) -> str:
    """``text`` for Slack mrkdwn: the three reserved characters escaped, no bare link."""
    return _unlinked(slack_reserved(text))


def slack_reserved(text: str) -> str:
    """Slack's three reserved characters (``&``, ``<``, ``>``) escaped, nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_plain(text: str) -> str:
    """``text`` for a Slack ``plain_text`` object (a header): shown as typed, no bare link."""
    return _unlinked(text)


def _unlinked(text: str) -> str:
    """A word joiner inside ``scheme://`` and after a dot that a host name would have."""
    text = _SCHEME.sub(lambda m: m.group(1) + ":" + WORD_JOINER, text)
    return _DOTTED.sub("." + WORD_JOINER, text)


def teams(text: str) -> str:
    """``text`` for a Teams TextBlock or FactSet value: no markdown, no live link."""
    text = _PHONE_LIKE.sub(lambda m: _join_digits(m.group(0)), text)
    text = _TEAMS_MARKERS.sub(r"\\\1", text)
    text = _TEAMS_LINE_START.sub(_escape_line_start, text)
    text = _unlinked(text)
    return _AT.sub("@" + WORD_JOINER, text)


def _escape_line_start(match: re.Match[str]) -> str:
    """``\\-`` for a bullet, ``1\\.`` for a numbered item (CommonMark escapes punctuation only)."""
    marker = match.group(2)
    escaped = marker[:-1] + "\\" + marker[-1] if marker[0].isdigit() else "\\" + marker
    return match.group(1) + escaped


def _join_digits(run: str) -> str:
    """A phone-like run with a word joiner after each digit but the last."""
    out = []
    for index, char in enumerate(run):
        out.append(char)
        if char.isdigit() and index < len(run) - 1:
            out.append(WORD_JOINER)
    return "".join(out)


def header_text(text: str) -> str:
    """``text`` on one line for an e-mail header (CR, LF and other breaks become a space)."""
    return " ".join(_HEADER_BREAKS.sub(" ", text).split())
