"""The Slack messages: an alert's, an incident event's and a digest's (a ``text`` fallback
and Block Kit blocks), and the buttons they carry with ``SLACK_SIGNING_SECRET``.

Each opens with who and what (``service.analysis.headline``); phone numbers are masked
as the logs mask them. Pure: no I/O. Blocks are built with slack_sdk's Block Kit models, whose
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

from service.analysis.alert import Alert, Issue, count_line
from service.analysis.headline import first_issue, headline, identity, party
from service.delivery.digests.content import parts as digest_parts
from service.delivery.digests.content import title as digest_title
from service.delivery.digests.store import Digest
from service.delivery.incidents.content import SEE_THE_REST, facts, sample_sids
from service.delivery.incidents.content import headline as incident_headline
from service.delivery.incidents.events import IncidentEvent
from service.delivery.sinks import escaping
from service.insights.events import ClientInfo

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
#: A meaning longer than this is shortened: the full text is in the webhook payload.
MAX_DESCRIPTION = 600
_EMOJI = {"error": ":rotating_light:", "warning": ":warning:"}
#: The buttons' ``action_id``s, answered at ``POST /slack/actions``.
SILENCE_ISSUE = "silence_issue"
SILENCE_AGENT = "silence_agent"
ACKNOWLEDGE = "acknowledge"
_LABELS = {SILENCE_ISSUE: "Silence issue 1 h", SILENCE_AGENT: "Silence agent 1 h",
           ACKNOWLEDGE: "Acknowledge"}
#: Slack caps a button's ``value`` at 2000 characters.
MAX_BUTTON_VALUE = 2000
_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")


def escape(text: str) -> str:
    """Text a caller or Twilio controls, for mrkdwn: no link, mention or ``&lt;`` markup
    (``escaping.slack``)."""
    return escaping.slack(text)


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


def buttons(*, issue_key: str | None, identity: str | None,
            incident_id: str | None = None) -> dict[str, Any]:
    """The ``actions`` block: silence the issue, silence the agent, acknowledge (for what
    is known); Slack posts the clicked one to ``POST /slack/actions``."""
    wanted = [(SILENCE_ISSUE, issue_key), (SILENCE_AGENT, identity), (ACKNOWLEDGE, incident_id)]
    elements = [{"type": "button", "action_id": action_id, "value": value[:MAX_BUTTON_VALUE],
                 "text": {"type": "plain_text", "text": _LABELS[action_id]},
                 **({"style": "primary"} if action_id == ACKNOWLEDGE else {})}
                for action_id, value in wanted if value]
    return {"type": "actions", "block_id": "callwatch_actions", "elements": elements}


def fallback_text(alert: Alert) -> str:
    """The notification line: who and what, then the counts, severity and CallSid (the summary)."""
    emoji = _EMOJI.get(alert.severity, ":warning:")
    return escape(f"{emoji} {alert.summary}")


def slack_message(alert: Alert, *, actions: bool = False) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook; ``actions``: with the silence buttons."""
    head: list[Block] = [_header(alert), _call_section(alert)]
    tail: list[Block] = []
    client = _client_context(alert.client)
    if client is not None:
        tail.append(client)
    issues = list(alert.issues)
    room = MAX_BLOCKS - len(head) - len(tail) - (1 if actions else 0)
    shown = issues if len(issues) <= room else issues[: room - 1]
    hidden = len(issues) - len(shown) + alert.truncated_issues
    blocks = head + [_issue_section(issue) for issue in shown]
    if hidden:
        noun = "issue" if hidden == 1 else "issues"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"…and {hidden} more {noun} (the webhook payload lists what callwatch kept)")]))
    blocks += tail
    rendered = [block.to_dict() for block in blocks]
    if actions:
        first = first_issue(alert.issues)
        rendered.append(buttons(issue_key=first.key if first else None,
                                identity=identity(alert.call)))
    return {"text": fallback_text(alert), "blocks": rendered}


def _header(alert: Alert) -> HeaderBlock:
    emoji = _EMOJI.get(alert.severity, ":warning:")
    text = shorten(f"{emoji} {escaping.slack_plain(headline(alert.call, alert.issues))}", MAX_HEADER)
    return HeaderBlock(text=PlainTextObject(text=text, emoji=True))


def _call_section(alert: Alert) -> SectionBlock:
    call = alert.call
    duration = f"{call.duration_s} s" if call.duration_s is not None else "unknown"
    lines = [
        f"*{escape(count_line(call, alert.issues))}*",
        f"*Call* `{escape(call.call_sid)}`",
        f"*Status* {escape(call.status)} · *Direction* {escape(call.direction or 'unknown')}"
        f" · *Duration* {duration}",
        f"*From* {escape(party(call.from_))} · *To* {escape(party(call.to))}",
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


def slack_incident_message(event: IncidentEvent, *, actions: bool = False) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook; ``actions``: with the buttons (silence
    the group's issue or agent; acknowledge while open and nobody has)."""
    emoji = _INCIDENT_EMOJI.get(event.event, ":warning:")
    title = shorten(f"{emoji} {escaping.slack_plain(incident_headline(event))}", MAX_HEADER)
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
    text = escape(f"{emoji} callwatch {incident_headline(event)}")
    rendered = [block.to_dict() for block in blocks]
    if actions and event.event != "resolved":
        data = event.data
        group = data.get("group") or {}
        issues = data.get("by_issue") or {}
        issue_key = group.get("issue") or (max(issues, key=lambda k: issues[k]) if issues else None)
        agent = group.get("identity") if group.get("identity") != "none" else None
        ack = None if data.get("acknowledged_by") else event.incident_id
        if issue_key in (None, "none"):
            issue_key = None
        if issue_key or agent or ack:
            rendered.append(buttons(issue_key=issue_key, identity=agent, incident_id=ack))
    return {"text": shorten(text, 3000), "blocks": rendered}


def slack_digest_message(digest: Digest) -> dict[str, Any]:
    """A digest: a header and one section per part, each within Slack's limits."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(
        text=shorten(":bar_chart: " + digest_title(digest), MAX_HEADER), emoji=True))]
    blocks += [_section(f"*{label}*\n{escape(value)}") for label, value in digest_parts(digest)]
    return {"text": shorten(escape(digest_title(digest)), 3000),
            "blocks": [block.to_dict() for block in blocks]}
