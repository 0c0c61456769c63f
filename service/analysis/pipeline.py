"""One analysis of one call: fetch its events, classify them, decide what happens next.

This is the domain half of the analysis job: it knows nothing of RQ. It returns
what happened (``Analysis``) and leaves waiting and re-scheduling to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.analysis.alert import Alert
from service.analysis.classifier import AlertPolicy, build_alert
from service.calls import Call
from service.errors import CallwatchError, EventsNotReady, InsightsUnavailable, PermanentError
from service.insights.events import Event

#: Outcomes of one analysis.
ALERT, NO_ALERT, NOT_READY, GAVE_UP = "alert", "no_alert", "not_ready", "gave_up"


@dataclass(frozen=True)
class Analysis:
    outcome: str
    alert: Alert | None = None
    events: int = 0
    #: Why Insights could not be read, when a ``failed`` call was alerted without it.
    insights_error: CallwatchError | None = None


def analyze(call: Call, fetch: Callable[[str], Sequence[Event]], policy: AlertPolicy, *,
            now: datetime, last_chance: bool) -> Analysis:
    """Fetch and classify; ``NOT_READY`` asks the caller to check again later.

    A call with no events yet (or a 404 from Insights) is not ready, or ``GAVE_UP``
    at the last check. A ``failed`` call is an issue of its own and is alerted at
    once with whatever events exist: also with none when Insights refuses or is down,
    since its issue does not depend on them. Other calls raise Insights' errors.
    """
    unread: CallwatchError | None = None
    try:
        events = list(fetch(call.call_sid))
    except EventsNotReady:
        events = []
    except (InsightsUnavailable, PermanentError) as error:
        if call.status != "failed":
            raise
        events, unread = [], error
    if not events and call.status != "failed":
        return Analysis(GAVE_UP if last_chance else NOT_READY)
    alert = build_alert(call, events, policy, now=now)
    return Analysis(ALERT if alert else NO_ALERT, alert=alert, events=len(events),
                    insights_error=unread)
