"""Who and what first: the words an alert opens with, in every sink and in ``summary``.

``alice → +1*******23: The Twilio gateway hung up with an error (31005)``: the Voice SDK
party's identity (the agent), an arrow in the call's direction, the other party
masked exactly as the logs mask it (``service.calls.mask_number``: one rule, so a
masked number in a message can be found in the logs), then the first issue's
description (errors first) and its error code. The counts follow in ``summary``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from service.calls import SDK_IDENTITY_PREFIX, Call, mask_number

#: The longest description a headline carries (the full one is in the issue).
MAX_WHAT = 120
#: The longest a party (an identity) is in a headline, so the problem, the counts and the
#: CallSid that follow it always fit ``summary``; the full value is in the alert's ``call``.
MAX_PARTY = 100
#: What stands for a party the callback did not name.
UNKNOWN_PARTY = "unknown"
#: A headline lands in plain-text places that chat apps still parse (a Slack header, a
#: notification line), so what came from a call cannot open a mention or a link, or
#: break a line: angle brackets become look-alikes, control characters spaces.
_PLAIN = {ord("<"): "\u2039", ord(">"): "\u203a",
          **{code: " " for code in (*range(0x20), *range(0x7F, 0xA0))}}


class IssueLike(Protocol):
    """What a headline needs of an issue (``service.analysis.alert.Issue``)."""

    @property
    def key(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def error_code(self) -> int | None: ...
    @property
    def description(self) -> str | None: ...


def identity(call: Call) -> str | None:
    """The Voice SDK party's identity (``alice`` for ``client:alice``): ``From`` when it is
    a ``client:`` party, else ``To``; None when neither is."""
    for end in (call.from_, call.to):
        if end and end.startswith(SDK_IDENTITY_PREFIX):
            return end.removeprefix(SDK_IDENTITY_PREFIX) or None
    return None


def party(value: str | None) -> str:
    """One end of the call as a person may read it: an identity, or a masked number; at
    most ``MAX_PARTY`` characters (a longer one ends with an ellipsis)."""
    if not value:
        return UNKNOWN_PARTY
    if value.startswith(SDK_IDENTITY_PREFIX):
        text = value.removeprefix(SDK_IDENTITY_PREFIX) or UNKNOWN_PARTY
    else:
        text = mask_number(value) or UNKNOWN_PARTY
    return text if len(text) <= MAX_PARTY else text[:MAX_PARTY - 1] + "…"


def who(call: Call) -> str:
    """``alice → +1*******23``; the agent first, the arrow saying who called whom; "" when
    the callback named neither end."""
    if not call.from_ and not call.to:
        return ""
    caller, callee = party(call.from_), party(call.to)
    if not (call.from_ or "").startswith(SDK_IDENTITY_PREFIX) and \
            (call.to or "").startswith(SDK_IDENTITY_PREFIX):
        return f"{callee} ← {caller}"
    return f"{caller} → {callee}"


_Issue = TypeVar("_Issue", bound=IssueLike)


def errors_first(issues: Iterable[_Issue]) -> list[_Issue]:
    """The issues, errors before warnings, each kind in its own order."""
    return sorted(issues, key=lambda issue: issue.severity != "error")


def first_issue(issues: Iterable[_Issue]) -> _Issue | None:
    """The issue a headline names: the first error, else the first warning."""
    ordered = errors_first(issues)
    return ordered[0] if ordered else None


def what(issues: Sequence[IssueLike]) -> str:
    """The first issue in words: ``The Twilio gateway hung up with an error (31005)``."""
    issue = first_issue(issues)
    if issue is None:
        return "no issues"
    text = (issue.description or issue.key).strip().rstrip(".")
    if len(text) > MAX_WHAT:
        cut = text[:MAX_WHAT].rfind(" ")
        text = (text[:cut] if cut > 0 else text[:MAX_WHAT - 1]).rstrip(" ,;:") + "…"
    code = issue.error_code
    if code is not None and str(code) not in text:
        text += f" ({code})"
    return text


def headline(call: Call, issues: Sequence[IssueLike]) -> str:
    """``alice → +1*******23: The Twilio gateway hung up with an error (31005)``."""
    parties = who(call)
    text = f"{parties}: {what(issues)}" if parties else what(issues)
    return text.translate(_PLAIN)
