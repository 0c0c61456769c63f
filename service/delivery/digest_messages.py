"""What a digest says, and its Slack, Teams and e-mail renderings. Pure, but ``target``.

One content for every sink: a title (``callwatch digest, Mon 7 Dec 08:00 → Tue 8 Dec
08:00 Europe/Dublin: 12 alerts on 340 calls``) and labelled parts (calls and alerts,
by issue, by agent, by country, incidents, worst calls), each list cut to ``TOP``
entries with "and N more". Slack's stays within 50 blocks, 150 characters a header and
3000 a section; Teams' card within a few KB (far under its 28 KB).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from service.delivery.digests import TOP, Digest, DigestTarget
from service.delivery.sinks.slack_blocks import MAX_HEADER, MAX_SECTION, escape, shorten

#: Incidents listed in a digest.
MAX_INCIDENTS = 10


def _when(moment: datetime, digest: Digest) -> str:
    local = moment.astimezone(digest.policy.zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def title(digest: Digest) -> str:
    """``callwatch digest, Mon 7 Dec 08:00 → Tue 8 Dec 08:00 Europe/Dublin: 12 alerts on 340 calls``."""
    period = digest.period
    alerts = f"{digest.alerts} alert{'s' if digest.alerts != 1 else ''}"
    calls = f"{digest.calls_analysed} call{'s' if digest.calls_analysed != 1 else ''} analysed"
    return (f"callwatch digest, {_when(period.start, digest)} → {_when(period.end, digest)} "
            f"{digest.policy.tz}: {alerts}, {calls}")


def top(counts: Mapping[str, int], limit: int = TOP) -> str:
    """``a (5), b (3), and 2 more``; ``none``."""
    items = list(counts.items())
    shown = ", ".join(f"{key} ({n})" for key, n in items[:limit])
    rest = len(items) - limit
    return (shown + (f", and {rest} more" if rest > 0 else "")) or "none"


def parts(digest: Digest) -> list[tuple[str, str]]:
    """(label, plain text) in display order."""
    share = (f" ({100 * digest.alerts / digest.calls_analysed:.1f} % of the calls)"
             if digest.calls_analysed else "")
    incidents = list(digest.incidents.values())
    incident_text = "\n".join(incidents[:MAX_INCIDENTS]) or "none"
    if len(incidents) > MAX_INCIDENTS:
        incident_text += f"\nand {len(incidents) - MAX_INCIDENTS} more (callwatch incidents list)"
    worst = "\n".join(f"{w.call_sid} ({w.severity}): {w.summary}" for w in digest.worst) or "none"
    return [
        ("Calls", f"{digest.calls_analysed} analysed, {digest.alerts} with an alert{share}"),
        ("By issue", top(digest.by_issue)),
        ("By agent", top({k: v for k, v in digest.by_agent.items() if k != "none"})),
        ("By country", top({k: v for k, v in digest.by_country.items() if k != "none"})),
        ("Incidents", incident_text),
        ("Worst calls", worst),
    ]


def text(digest: Digest) -> str:
    """The digest as plain text (e-mail, the README, the log sink)."""
    lines = [title(digest), ""]
    for label, value in parts(digest):
        body = value.splitlines() or [""]
        lines.append(f"{label}: {body[0]}" if len(body) == 1 else f"{label}:")
        if len(body) > 1:
            lines += [f"  {line}" for line in body]
    return "\n".join(lines) + "\n"


def slack_digest_message(digest: Digest) -> dict[str, Any]:
    """Block Kit: a header, one section per part (each within 3000 characters)."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {
        "type": "plain_text", "text": shorten(":bar_chart: " + title(digest), MAX_HEADER), "emoji": True}}]
    for label, value in parts(digest):
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": shorten(f"*{label}*\n{escape(value)}", MAX_SECTION)}})
    return {"text": shorten(escape(title(digest)), 3000), "blocks": blocks}


def teams_digest_card(digest: Digest) -> dict[str, Any]:
    """A Teams Workflows ``message`` with one Adaptive Card (1.4)."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title(digest), "weight": "Bolder", "size": "Medium", "wrap": True}]
    for label, value in parts(digest):
        body.append({"type": "TextBlock", "text": label, "weight": "Bolder", "wrap": True})
        body.append({"type": "TextBlock", "text": shorten(value, 4000), "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def email_digest(digest: Digest, sender: str, to: list[str]) -> EmailMessage:
    """Plain text and HTML; the Message-ID is the sink's and period's, so a resend is the same mail."""
    message = EmailMessage()
    message["Subject"] = shorten(f"[callwatch] {title(digest)}", 200)
    message["From"] = sender
    message["To"] = ", ".join(to)
    domain = sender.rpartition("@")[2].strip("> ") or "callwatch.invalid"
    message["Message-ID"] = f"<digest.{digest.sink}.{digest.period.key}@{domain}>"
    message.set_content(text(digest))
    rows = "".join(f"<tr><th align=\"left\" valign=\"top\">{html.escape(label)}</th>"
                   f"<td>{html.escape(value).replace(chr(10), '<br>')}</td></tr>"
                   for label, value in parts(digest))
    message.add_alternative(f"<h2>{html.escape(title(digest))}</h2><table>{rows}</table>",
                            subtype="html")
    return message


def target(sink: Any) -> DigestTarget | None:
    """How ``sink`` sends a digest (its renderer and its delivery path), or None."""
    kind = type(sink).__name__
    if kind == "SlackSink":
        return lambda digest: sink._post(slack_digest_message(digest))
    if kind == "TeamsSink":
        return lambda digest: sink.post(teams_digest_card(digest))
    if kind == "EmailSink":
        return lambda digest: sink.send_message(email_digest(digest, sink._sender, list(sink._to)))
    return None
