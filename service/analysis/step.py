"""The analysis step: fetch one call's events, classify them, decide what happens next.

Domain code: it knows nothing of RQ. ``analyze_step`` returns a ``Decision``
(``service.decisions``): ``Done`` with the alert's deliveries (one per sink the
router chose), ``Again`` when Insights has no events yet (a re-check) or answered
429/5xx (a retry), ``Failed`` when Insights refused for good or stayed down. The
worker's job and ``callwatch analyze`` run this same step.

Policy lives here: the re-check waits (``ANALYSIS_RECHECK_SECONDS``), the waits when
Insights keeps failing beyond its client's own retries, and what a ``failed`` call
gets (alerted at once, with whatever events exist, even when Insights is down: its
issue does not depend on them).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import structlog

from service.analysis.alert import Alert, Issue
from service.analysis.classifier import AlertPolicy, build_alert
from service.analysis.legs import FIRST, LISTED, SUMMARY, LegPolicy, LegReader, admit_children
from service.analysis.no_events import NOTICE
from service.analysis.summary_tags import summary_issues
from service.calls import Call, has_sdk_party
from service.decisions import Again, AnalysisOutcome, Decision, Delivery, Done, Drop, Failed
from service.errors import CallwatchError, EventsNotReady, InsightsUnavailable, PermanentError
from service.insights.events import Event
from service.settings import Settings

#: Waits (s) when Insights keeps answering 429/5xx beyond the client's own retries.
INSIGHTS_RETRY_S = (15, 60, 180, 600)

log = structlog.get_logger(__name__)


class IncidentDesk(Protocol):
    """What the step asks of the incident desk (``service.delivery.incidents.desk``),
    which the edge passes in: the analysis floor imports nothing of delivery."""

    def analysed(self, alert: Alert | None) -> None: ...

    def deliveries(self, alert: Alert, envelope: dict[str, Any]) -> tuple[Delivery, ...]: ...


@dataclass(frozen=True)
class AnalysisRequest:
    """One run of the step: the call, and how many re-checks and retries came before."""

    call: Call
    recheck: int = 0
    attempt: int = 0
    #: A leg with no SDK party: ``service.analysis.legs``' stage ("", listed, summary).
    stage: str = FIRST

    def state(self) -> dict[str, Any]:
        return {"recheck": self.recheck, "attempt": self.attempt, "stage": self.stage}


@dataclass(frozen=True)
class AnalysisPolicy:
    """When to look again, and what is worth an alert."""

    alert: AlertPolicy = field(default_factory=AlertPolicy)
    recheck_s: tuple[int, ...] = (60, 180, 600)
    insights_retry_s: tuple[int, ...] = INSIGHTS_RETRY_S
    #: The Insights Events edges fetched (``INSIGHTS_EDGES`` without ``call_summary``).
    edges: tuple[str, ...] = ("sdk_edge",)
    #: Child legs and Call Summaries of legs with no SDK party.
    legs: LegPolicy = field(default_factory=LegPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnalysisPolicy:
        return cls(alert=AlertPolicy.from_settings(settings),
                   recheck_s=settings.analysis_recheck_seconds, edges=settings.events_edges,
                   legs=LegPolicy.from_settings(settings))

    def fetches(self, call: Call) -> bool:
        """Whether Insights can hold anything for ``call``: with only ``sdk_edge``
        configured, a leg with no ``client:`` party has no SDK events to fetch."""
        return self.edges != ("sdk_edge",) or has_sdk_party(call)


@dataclass(frozen=True)
class AnalysisResult:
    """The decision, and what the step found (for the caller's log and metrics)."""

    decision: Decision
    alert: Alert | None = None
    events: int = 0
    #: ``silenced``, ``unrouted`` or ``dropped``: the alert was made but goes nowhere (counted by the caller).
    dropped: str | None = None


def analyze_step(request: AnalysisRequest, *, fetch: Callable[[str], Sequence[Event]],
                 policy: AnalysisPolicy, route: Callable[[Alert], Sequence[str]],
                 now: datetime, jitter: Callable[[], float] = lambda: random.uniform(1.0, 1.2),  # noqa: S311
                 screen: Callable[[Alert], Drop | None] = lambda alert: None,
                 incidents: IncidentDesk | None = None, legs: LegReader | None = None,
                 admit: Callable[[Call], bool] | None = None) -> AnalysisResult:
    """Fetch and classify one call; say what should happen next.

    With ``incidents``, every analysed call is counted (the failure ratio's denominator)
    and an alert's deliveries are the desk's: folded into an open incident for some sinks.
    With ``legs`` and ``admit``, a leg with no SDK party has its SDK child legs admitted
    as calls of their own and (``call_summary``) its Call Summary read.
    """
    call = request.call
    if legs is not None and admit is not None and policy.legs.lists_children(call, request.stage):
        try:
            admit_children(call, legs.child_legs(call), admit)
        except InsightsUnavailable as error:
            return AnalysisResult(_retry(request, policy, error, jitter))
        except PermanentError as error:
            log.warning("child_legs_unread", reason=error.reason, message=str(error))
        request = replace(request, stage=LISTED)
    extra: list[Issue] = []
    if legs is not None and policy.legs.reads_summary(call):
        if request.stage != SUMMARY:
            log.info("summary_scheduled", delay_s=policy.legs.summary_wait_s)
            return AnalysisResult(Again(AnalysisOutcome.SUMMARY_LATER, policy.legs.summary_wait_s,
                                        replace(request, recheck=0, attempt=0,
                                                stage=SUMMARY).state()))
        try:
            extra = summary_issues(legs.summary(call), min_level=policy.alert.min_level,
                                   ignore=policy.alert.ignore)
        except EventsNotReady:
            if request.recheck >= len(policy.recheck_s):  # not an SDK call: no NOTICE
                log.info("summary_gave_up", rechecks=request.recheck,
                         message="Insights has no Call Summary for this leg; is Voice Insights "
                                 "Advanced Features on?")
                return AnalysisResult(Done(AnalysisOutcome.GAVE_UP))
            return AnalysisResult(_recheck_or_give_up(request, policy))
        except InsightsUnavailable as error:
            return AnalysisResult(_retry(request, policy, error, jitter))
        except PermanentError as error:
            log.error("analysis_failed", reason=error.reason, message=str(error))
            return AnalysisResult(Failed(AnalysisOutcome.FAILED, error.reason, str(error)))
        if not policy.fetches(call):
            fetch = _nothing  # the summary is all there is to read of this leg
    elif not policy.fetches(call):  # a phone-to-phone leg: no Voice SDK events to fetch
        log.info("analysis_skipped", reason="no_sdk_party",
                 message="neither From nor To is a client: identity, so the leg has no Voice "
                         "SDK events" + ("; its <Dial><Client> child legs are analysed as "
                                         "calls of their own" if request.stage == LISTED else
                                         "; put the status callback on the <Dial><Client> leg "
                                         "(or leave FOLLOW_CHILD_LEGS on)"))
        if call.status != "failed":
            return AnalysisResult(Done(AnalysisOutcome.SKIPPED))
        fetch = _nothing  # a failed leg is alerted from its status alone
    try:
        events, unread = _read_events(call, fetch)
    except InsightsUnavailable as error:
        return AnalysisResult(_retry(request, policy, error, jitter))
    except PermanentError as error:
        log.error("analysis_failed", reason=error.reason, message=str(error))
        return AnalysisResult(Failed(AnalysisOutcome.FAILED, error.reason, str(error)))
    if unread is not None:
        reason = unread.reason if isinstance(unread, PermanentError) else "insights_unavailable"
        log.warning("analysis_without_events", reason=reason,
                    message=f"the failed call is alerted without its Insights events: {unread}")
    if not events and call.status != "failed" and request.stage != SUMMARY:
        return AnalysisResult(_recheck_or_give_up(request, policy))
    alert = build_alert(call, events, policy.alert, now=now, extra=extra)
    if incidents is not None:
        incidents.analysed(alert)  # with an alert, the screen's silences read in its round trip
    if alert is None:
        log.info("analysis_no_alert", events=len(events))
        return AnalysisResult(Done(AnalysisOutcome.NO_ALERT), events=len(events))
    drop = screen(alert)
    if drop is not None:  # a silence matched, or no route and no default took it
        (log.warning if drop.reason == "unrouted" else log.info)(
            f"alert_{drop.reason}", alert_id=alert.alert_id, severity=alert.severity, **drop.fields)
        return AnalysisResult(Done(AnalysisOutcome.ALERT), alert=alert, events=len(events),
                              dropped=drop.reason)
    envelope = alert.to_envelope()
    sinks = list(route(alert))
    log.info("alert_created", alert_id=alert.alert_id, severity=alert.severity,
             issues=len(alert.issues), events=len(events), sinks=sinks)
    deliveries = (incidents.deliveries(alert, envelope) if incidents is not None
                  else tuple(Delivery(sink, envelope) for sink in sinks))
    return AnalysisResult(Done(AnalysisOutcome.ALERT, deliveries), alert=alert, events=len(events))


def _nothing(call_sid: str) -> list[Event]:
    return []


def _read_events(call: Call, fetch: Callable[[str], Sequence[Event]],
                 ) -> tuple[list[Event], CallwatchError | None]:
    """The call's events (none yet: empty), and why they could not be read for a failed call."""
    try:
        return list(fetch(call.call_sid)), None
    except EventsNotReady:
        return [], None
    except (InsightsUnavailable, PermanentError) as error:
        if call.status != "failed":
            raise
        return [], error


def _recheck_or_give_up(request: AnalysisRequest, policy: AnalysisPolicy) -> Decision:
    rechecks = policy.recheck_s
    if request.recheck >= len(rechecks):
        NOTICE.gave_up(request.recheck)
        return Done(AnalysisOutcome.GAVE_UP)
    delay = rechecks[request.recheck]
    # A new check has the whole Insights retry budget again.
    log.info("analysis_recheck_scheduled", delay_s=delay, recheck=request.recheck + 1)
    return Again(AnalysisOutcome.RECHECK, delay,
                 replace(request, recheck=request.recheck + 1, attempt=0).state())


def _retry(request: AnalysisRequest, policy: AnalysisPolicy, error: InsightsUnavailable,
           jitter: Callable[[], float]) -> Decision:
    waits = policy.insights_retry_s
    if request.attempt >= len(waits):
        log.error("analysis_failed", reason="insights_unavailable", attempts=request.attempt + 1,
                  message=str(error))
        return Failed(AnalysisOutcome.FAILED, "insights_unavailable", str(error))
    delay = max(error.retry_after or 0, waits[request.attempt]) * jitter()
    log.warning("analysis_retry_scheduled", delay_s=round(delay, 1), attempt=request.attempt + 1,
                status=error.status)
    return Again(AnalysisOutcome.RETRY, delay, replace(request, attempt=request.attempt + 1).state())
