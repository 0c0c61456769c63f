"""The Slack message for one alert: a ``text`` fallback and Block Kit blocks.

Pure: no I/O. Blocks are built with slack_sdk's Block Kit models, whose
``to_dict()`` checks Slack's limits, and this module keeps within them on its own
(50 blocks, 150 characters a header, 3000 a section): issues that do not fit are
counted in a closing "…and N more issues" line, and long text is shortened at a
word boundary with an ellipsis, never inside a word or an ``&amp;`` escape.
"""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from service.analysis.alert import Alert, Issue
from service.delivery.incidents.content import SEE_THE_REST, facts, headline, sample_sids
from service.delivery.incidents.events import IncidentEvent
from service.insights.events import ClientInfo

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
#: A meaning longer than this is shortened: the full text is in the webhook payload.
MAX_DESCRIPTION = 600
_EMOJI = {"error": ":rotating_light:", "warning": ":warning:"}
_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits, else cut at the last space before ``limit`` plus an ellipsis.

    A single word longer than ``limit`` is cut hard, but never inside an escape
    such as ``&amp;``, so the result stays valid mrkdwn.
    """
    if len(text) <= limit:
        return text
    room = limit - 1  # for the ellipsis
    cut = text[: room + 1].rfind(" ")
    head = text[:cut].rstrip() if cut > 0 else _PARTIAL_ENTITY.sub("", text[:room])
    return head + "…"


def fallback_text(alert: Alert) -> str:
    """The notification line: severity and CallSid first, then the summary."""
    emoji = _EMOJI.get(alert.severity, ":warning:")
    return escape(f"{emoji} callwatch {alert.severity} on {alert.call.call_sid}: {alert.summary}")


def slack_message(alert: Alert) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook."""
    head: list[Block] = [_header(alert), _call_section(alert)]
    tail: list[Block] = []
    client = _client_context(alert.client)
    if client is not None:
        tail.append(client)
    issues = list(alert.issues)
    room = MAX_BLOCKS - len(head) - len(tail)
    shown = issues if len(issues) <= room else issues[: room - 1]
    hidden = len(issues) - len(shown) + alert.truncated_issues
    blocks = head + [_issue_section(issue) for issue in shown]
    if hidden:
        noun = "issue" if hidden == 1 else "issues"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"…and {hidden} more {noun} (the webhook payload lists what callwatch kept)")]))
    blocks += tail
    return {"text": fallback_text(alert), "blocks": [block.to_dict() for block in blocks]}


def _header(alert: Alert) -> HeaderBlock:
    emoji = _EMOJI.get(alert.severity, ":warning:")
    text = shorten(f"{emoji} Call {alert.severity}: {alert.summary}", MAX_HEADER)
    return HeaderBlock(text=PlainTextObject(text=text, emoji=True))


def _call_section(alert: Alert) -> SectionBlock:
    call = alert.call
    duration = f"{call.duration_s} s" if call.duration_s is not None else "unknown"
    lines = [
        f"*Call* `{escape(call.call_sid)}`",
        f"*Status* {escape(call.status)} · *Direction* {escape(call.direction or 'unknown')}"
        f" · *Duration* {duration}",
        f"*From* {escape(call.from_ or 'unknown')} · *To* {escape(call.to or 'unknown')}",
    ]
    if call.parent_call_sid:
        lines.append(f"*Parent call* `{escape(call.parent_call_sid)}`")
    return _section("\n".join(lines))


def _issue_section(issue: Issue) -> SectionBlock:
    emoji = _EMOJI.get(issue.severity, ":warning:")
    title = "/".join(part for part in (issue.group, issue.name) if part) or issue.key
    times = "once" if issue.count == 1 else f"{issue.count} times"
    lines = [f"{emoji} *{escape(title)}* ({escape(issue.level)}, {times})"]
    details = []
    if issue.edge:
        details.append(f"edge {escape(issue.edge)}")
    if issue.duration_s is not None:
        details.append(f"lasted {issue.duration_s:g} s")
    if issue.cleared is not None:
        details.append("cleared" if issue.cleared else "never cleared")
    if details:
        lines.append(" · ".join(details))
    if issue.error_code is not None:
        lines.append(f"*Error {issue.error_code}*")
    if issue.description:
        lines.append(escape(shorten(issue.description, MAX_DESCRIPTION)))
    if issue.first_at:
        span = escape(issue.first_at)
        if issue.last_at and issue.last_at != issue.first_at:
            span += f" → {escape(issue.last_at)}"
        lines.append(f"_{span}_")
    return _section("\n".join(lines))


def _client_context(client: ClientInfo | None) -> ContextBlock | None:
    if client is None or client.is_empty:
        return None
    parts = []
    sdk = " ".join(p for p in (client.sdk_type, client.sdk_version) if p)
    if sdk or client.platform:
        parts.append(f"*SDK* {sdk}" + (f" ({client.platform})" if client.platform else ""))
    os_ = " ".join(p for p in (client.os_name, client.os_version) if p)
    if os_:
        parts.append(f"*OS* {os_}")
    device = " ".join(p for p in (client.device_vendor, client.device_model) if p)
    if device:
        parts.append(f"*Device* {device}")
    place = ", ".join(p for p in (client.city, client.country_code) if p)
    if place:
        parts.append(f"*Location* {place}")
    text = shorten(escape(" · ".join(parts)), 2000)
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=shorten(text, MAX_SECTION)))


_INCIDENT_EMOJI = {"opened": ":rotating_light:", "updated": ":arrows_counterclockwise:",
                   "resolved": ":white_check_mark:"}


def slack_incident_message(event: IncidentEvent) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook."""
    emoji = _INCIDENT_EMOJI.get(event.event, ":warning:")
    title = shorten(f"{emoji} {headline(event)}", MAX_HEADER)
    lines = [f"*{label}* {escape(value)}" for label, value in facts(event)]
    sids = sample_sids(event)
    sid_text = " ".join(f"`{escape(s)}`" for s in sids) or "none yet"
    calls = int(event.data.get("calls") or 0)
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=title, emoji=True)),
        SectionBlock(text=MarkdownTextObject(text=shorten("\n".join(lines), MAX_SECTION))),
        SectionBlock(text=MarkdownTextObject(text=shorten(
            f"*Sample calls* ({len(sids)} of {calls})\n{sid_text}", MAX_SECTION))),
        ContextBlock(elements=[MarkdownTextObject(text=shorten(
            f"Incident `{escape(event.incident_id)}` · {SEE_THE_REST}", 2000))]),
    ]
    text = escape(f"{emoji} callwatch {headline(event)}")
    return {"text": shorten(text, 3000), "blocks": [block.to_dict() for block in blocks]}
