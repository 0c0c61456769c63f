"""What each kind of receiver shows for an incident event. Pure: no I/O.

One content for every human-facing sink: the group in plain words, the count, the
time span, the top error codes, SDK versions and countries, up to 10 sample CallSids
and one line on how to see the rest. ``slack_incident_message`` (Block Kit, within
Slack's limits), ``teams_incident_card`` (a Teams Workflows ``message`` with one
Adaptive Card), ``email_incident`` (subject, plain text, HTML) and
``pagerduty_incident_event`` (Events API v2: ``trigger`` on ``dedup_key`` =
incident id, re-triggered by updates, ``resolve`` when resolved) render it.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from service.delivery.incidents.events import IncidentEvent
from service.delivery.incidents.grouping import describe_group
from service.delivery.sinks.slack_blocks import MAX_HEADER, MAX_SECTION, escape, shorten

#: CallSids shown in a message (the webhook event carries up to 20).
MAX_SHOWN_SIDS = 10
#: Values shown per breakdown (error codes, SDK versions, countries).
TOP = 5
#: How to see every call of an incident.
SEE_THE_REST = "`callwatch incidents list` shows every incident; the webhook events carry 20 CallSids"
#: PagerDuty's limit on ``payload.summary``.
PAGERDUTY_SUMMARY_MAX = 1024
_EMOJI = {"opened": ":rotating_light:", "updated": ":arrows_counterclockwise:",
          "resolved": ":white_check_mark:"}


def headline(event: IncidentEvent) -> str:
    """``Incident updated: 57 calls so far with issue sdk_edge/error/31005 (route default)``."""
    data = event.data
    calls = int(data.get("calls") or 0)
    noun = "call" if calls == 1 else "calls"
    group = describe_group(data.get("group") or {})
    if event.event == "opened":
        counted = "calls are failing with" if data.get("trigger") != "ratio" else "too many calls fail with"
        return f"Incident opened: {counted} {group} (route {data.get('route')})"
    so_far = " so far" if event.event == "updated" else ""
    return f"Incident {event.event}: {calls} {noun}{so_far} with {group} (route {data.get('route')})"


def time_span(event: IncidentEvent) -> str:
    """``12:00:03 → 12:04:10 UTC (4 min)``: from opening to the latest event."""
    data = event.data
    start = _when(data.get("opened_at"))
    end = _when(data.get("resolved_at") or data.get("updated_at")) or start
    if start is None or end is None:
        return "unknown"
    minutes = max(0, round((end - start).total_seconds() / 60))
    return f"{start:%H:%M:%S} → {end:%H:%M:%S} UTC ({minutes} min)"


def trigger_line(event: IncidentEvent) -> str:
    data = event.data
    ratio = data.get("ratio")
    if data.get("trigger") == "ratio" and ratio:
        return (f"{ratio['percent']:g} % of {ratio['analysed']} calls analysed had this alert "
                f"({ratio['with_alert']})")
    return "many calls of the group failed within a short time (storm)"


def breakdown(counts: dict[str, int], top: int = TOP) -> str:
    """``31005 (50), 31009 (7), and 2 more``."""
    items = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{key} ({n})" for key, n in items[:top])
    rest = len(items) - top
    return (shown + (f", and {rest} more" if rest > 0 else "")) or "none"


def facts(event: IncidentEvent) -> list[tuple[str, str]]:
    """The incident's facts as (label, plain text) pairs, in display order."""
    data = event.data
    calls = int(data.get("calls") or 0)
    since = int(data.get("calls_since_last") or 0)
    return [
        ("Group", describe_group(data.get("group") or {})),
        ("Calls", f"{calls} in this incident" + (f", {since} since the last message"
                                                  if event.event != "opened" else "")
         + " (alerts sent one by one before it opened are not counted)"),
        ("Time span", time_span(event)),
        ("Trigger", trigger_line(event)),
        ("Error codes", breakdown(data.get("by_error_code") or {})),
        ("SDK versions", breakdown(data.get("by_sdk") or {})),
        ("Countries", breakdown(data.get("by_country") or {})),
    ]


def sample_sids(event: IncidentEvent) -> list[str]:
    return [str(s) for s in (event.data.get("sample_call_sids") or [])[:MAX_SHOWN_SIDS]]


def slack_incident_message(event: IncidentEvent) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook."""
    emoji = _EMOJI.get(event.event, ":warning:")
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


def pagerduty_incident_event(event: IncidentEvent, routing_key: str) -> dict[str, Any]:
    """An Events API v2 event: ``trigger`` (opened, updated) or ``resolve`` on the incident id."""
    action = "resolve" if event.event == "resolved" else "trigger"
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                            "dedup_key": event.incident_id}
    if action == "trigger":
        body["payload"] = {
            "summary": shorten(f"callwatch: {headline(event)}", PAGERDUTY_SUMMARY_MAX),
            "source": "callwatch",
            "severity": "error",
            "timestamp": event.timestamp,
            "component": str(event.data.get("route")),
            "group": describe_group(event.data.get("group") or {})[:255],
            "class": str(event.data.get("trigger")),
            "custom_details": {label: value for label, value in facts(event)}
            | {"sample_call_sids": sample_sids(event), "incident_id": event.incident_id},
        }
    return body


def teams_incident_card(event: IncidentEvent) -> dict[str, Any]:
    """A Teams Workflows ``message`` with one Adaptive Card (version 1.4)."""
    sids = sample_sids(event)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": headline(event), "weight": "Bolder", "size": "Medium",
         "wrap": True},
        {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in facts(event)]},
        {"type": "TextBlock", "text": f"Sample calls ({len(sids)} of {event.data.get('calls')})",
         "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": "\n".join(sids) or "none yet", "fontType": "Monospace",
         "wrap": True},
        {"type": "TextBlock", "text": f"Incident {event.incident_id} · {SEE_THE_REST.replace('`', '')}",
         "isSubtle": True, "size": "Small", "wrap": True},
    ]
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def email_incident(event: IncidentEvent) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of one incident event's e-mail."""
    subject = shorten(f"[callwatch] {headline(event)}", 200).replace("\n", " ")
    sids = sample_sids(event)
    rest = SEE_THE_REST.replace("`", "")
    text_lines = [headline(event), ""] + [f"{label}: {value}" for label, value in facts(event)]
    text_lines += ["", f"Sample calls ({len(sids)} of {event.data.get('calls')}):"]
    text_lines += [f"  {sid}" for sid in sids] or ["  none yet"]
    text_lines += ["", f"Incident {event.incident_id}. {rest}."]
    rows = "".join(f"<tr><th align=\"left\">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
                   for label, value in facts(event))
    items = "".join(f"<li><code>{html.escape(sid)}</code></li>" for sid in sids) or "<li>none yet</li>"
    body = (f"<h2>{html.escape(headline(event))}</h2><table>{rows}</table>"
            f"<h3>Sample calls ({len(sids)} of {html.escape(str(event.data.get('calls')))})</h3>"
            f"<ul>{items}</ul><p><small>Incident {html.escape(event.incident_id)}. "
            f"{html.escape(rest)}.</small></p>")
    return subject, "\n".join(text_lines) + "\n", body


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
