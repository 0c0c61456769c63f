"""What every human-facing receiver shows for an incident event. Pure: no I/O.

One content for every sink type: the group in plain words, the count, the time span,
the top error codes, SDK versions and countries, up to 10 sample CallSids and one line
on how to see the rest. Each sink type renders it in its own module (Slack Block Kit,
a Teams Adaptive Card, an e-mail, a PagerDuty event).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.delivery.incidents.events import IncidentEvent
from service.delivery.incidents.grouping import describe_group, group_words

#: CallSids shown in a message (the webhook event carries up to 20).
MAX_SHOWN_SIDS = 10
#: Values shown per breakdown (error codes, SDK versions, countries).
TOP = 5
#: How to see every call of an incident.
SEE_THE_REST = "`callwatch incidents list` shows every incident; the webhook events carry 20 CallSids"


def headline(event: IncidentEvent) -> str:
    """``Incident opened: 31009 on 5 calls (route default)``, ``Incident updated: agent bob:
    3 calls with high jitter (route repeat-offenders)``: the group in words, agent first."""
    data = event.data
    calls = int(data.get("calls") or 0)
    words = group_words(data.get("group") or {}, data.get("by_issue") or {}, calls,
                        so_far=event.event == "updated")
    ratio = ", too many of the calls analysed" if data.get("trigger") == "ratio" else ""
    return f"Incident {event.event}: {words}{ratio} (route {data.get('route')})"


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
    ] + ([("Acknowledged", f"by {data['acknowledged_by']}")] if data.get("acknowledged_by") else [])


def sample_sids(event: IncidentEvent) -> list[str]:
    return [str(s) for s in (event.data.get("sample_call_sids") or [])[:MAX_SHOWN_SIDS]]


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
