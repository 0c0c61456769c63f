"""What a digest says, for every sink. Pure: no I/O.

One content: a title (``callwatch digest, Mon 7 Dec 08:00 → Tue 8 Dec 08:00
Europe/Dublin: 12 alerts, 340 calls analysed``) and labelled parts (calls and alerts, by
issue, by agent, by country, incidents, worst calls), each list cut to ``TOP`` entries
with "and N more". Each sink type renders it in its own module (Slack Block Kit within
Slack's limits, a Teams Adaptive Card of a few KB, an e-mail).
"""

from __future__ import annotations

from datetime import datetime

from service.delivery.digests.store import TOP, Digest
from service.delivery.incidents.content import breakdown

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


def top(counts: dict[str, int]) -> str:
    """``a (5), b (3), and 2 more``; ``none`` (``incidents.content.breakdown``, cut to ``TOP``)."""
    return breakdown(counts, top=TOP)


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
