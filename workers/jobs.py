"""The jobs RQ runs. Thin: rebuild input from JSON, build collaborators, call the domain.

Waiting is never done by sleeping in a worker: a job that must wait (events not in
Insights yet, a 429, Slack's pace) schedules its successor under a new id derived
from the data and returns. Every successor is enqueued ``unique``, so a job re-run
after a crash cannot fork the chain. Permanent failures fail the job once, with
the reason in the log, and are not retried.
"""

from __future__ import annotations

import random
import time
from typing import Any

import structlog
from rq import get_current_job

from service.analysis.alert import Alert
from service.analysis.classifier import AlertPolicy
from service.analysis.pipeline import ALERT, GAVE_UP, NOT_READY, analyze
from service.calls import Call
from service.delivery import DeliveryLedger, Pace, deliver
from service.errors import (
    DeliveryPaced,
    DeliveryRejected,
    DeliveryRetryable,
    InsightsUnavailable,
    PermanentError,
)
from service.insights.client import InsightsClient
from service.metrics import Metrics
from service.sinks import build_sinks, sink_by_id
from workers.context import current
from workers.queues import schedule_analysis, schedule_delivery

#: Slack takes about one message a second per webhook; the margin absorbs the few
#: milliseconds between taking the turn and the request arriving.
SLACK_PACE_S = 1.1
#: A paced Slack message waits this long in the worker; longer, it is rescheduled to its slot.
PACE_INLINE_WAIT_S = 2.0
#: Waits (s) when Insights keeps answering 429/5xx beyond the client's own retries.
INSIGHTS_RETRY_S = (15, 60, 180, 600)

log = structlog.get_logger()


def analyze_call(call_json: dict[str, Any], recheck: int = 0, attempt: int = 0) -> str:
    """Analyse one call: fetch its events, classify them, hand any alert to the sinks."""
    context = current()
    settings, metrics = context.settings, Metrics(context.redis)
    call = Call.from_json(call_json)
    _bind(call_sid=call.call_sid)
    log.info("analysis_started", recheck=recheck, attempt=attempt, **call.log_fields())
    client = InsightsClient(
        settings.twilio_insights_base_url, settings.insights_auth, session=context.session,
        on_request=lambda status, seconds: _insights_request(metrics, status, seconds))
    policy = AlertPolicy.from_settings(settings)
    rechecks = settings.analysis_recheck_seconds
    try:
        result = analyze(call, lambda sid: client.fetch_events(sid, settings.insights_edges),
                         policy, now=context.clock(), last_chance=recheck >= len(rechecks))
    except InsightsUnavailable as error:
        return _retry_analysis(metrics, call_json, recheck, attempt, error)
    except PermanentError as error:
        log.error("analysis_failed", reason=error.reason, message=str(error))
        metrics.inc("callwatch_analyses", outcome="failed")
        _no_crash_retry()
        raise
    metrics.inc("callwatch_insights_events_fetched", result.events)
    if result.insights_error is not None:
        unread = result.insights_error
        reason = unread.reason if isinstance(unread, PermanentError) else "insights_unavailable"
        log.warning("analysis_without_events", reason=reason,
                    message=f"the failed call is alerted without its Insights events: {unread}")
    if result.outcome == NOT_READY:
        delay = rechecks[recheck]
        # A new check has the whole Insights retry budget again.
        schedule_analysis(context.redis, call_json, delay_s=delay, recheck=recheck + 1, attempt=0)
        log.info("analysis_recheck_scheduled", delay_s=delay, recheck=recheck + 1)
        metrics.inc("callwatch_analyses", outcome="recheck")
        return NOT_READY
    if result.outcome == GAVE_UP:
        log.warning("analysis_gave_up", rechecks=recheck,
                    message="Insights still has no events for this call; is Voice Insights "
                            "Advanced Features on and is this a Voice SDK call?")
        metrics.inc("callwatch_analyses", outcome="gave_up")
        return GAVE_UP
    metrics.inc("callwatch_analyses", outcome=result.outcome)
    if result.outcome != ALERT or result.alert is None:
        log.info("analysis_no_alert", events=result.events)
        return result.outcome
    alert = result.alert
    metrics.inc("callwatch_alerts", severity=alert.severity)
    envelope = alert.to_envelope()
    sinks = [sink.sink_id for sink in build_sinks(settings, session=context.session)]
    for sink_id in sinks:
        schedule_delivery(context.redis, sink_id, envelope)
    log.info("alert_created", alert_id=alert.alert_id, severity=alert.severity,
             issues=len(alert.issues), events=result.events, sinks=sinks)
    return ALERT


def deliver_alert(sink_id: str, envelope: dict[str, Any], attempt: int = 0, hop: int = 0,
                  booked: bool = False) -> str:
    """Deliver one alert through one sink, exactly once, honouring the receiver's pace."""
    context = current()
    settings, metrics = context.settings, Metrics(context.redis)
    alert = Alert.from_envelope(envelope)
    _bind(call_sid=alert.call.call_sid, alert_id=alert.alert_id, sink=sink_id)
    try:
        sink = sink_by_id(settings, sink_id, session=context.session)
    except PermanentError as error:  # the sink was removed from the settings since
        log.error("alert_delivery_rejected", reason=error.reason, message=str(error))
        metrics.inc("callwatch_deliveries", sink=sink_id, outcome="rejected")
        _no_crash_retry()
        raise
    pace = Pace(context.redis, interval_s=SLACK_PACE_S) if sink_id.startswith("slack") else None
    started = time.monotonic()
    try:
        outcome = deliver(alert, sink, ledger=DeliveryLedger(context.redis), pace=pace,
                          booked=booked, inline_wait_s=PACE_INLINE_WAIT_S)
    except DeliveryRetryable as error:
        return _retry_delivery(metrics, sink_id, envelope, attempt, hop, error)
    except DeliveryRejected:
        metrics.inc("callwatch_deliveries", sink=sink_id, outcome="rejected")
        _no_crash_retry()
        raise
    finally:
        metrics.observe("callwatch_delivery_duration_seconds", time.monotonic() - started,
                        sink=sink_id)
    metrics.inc("callwatch_deliveries", sink=sink_id, outcome=outcome)
    return outcome


def _retry_analysis(metrics: Metrics, call_json: dict[str, Any], recheck: int, attempt: int,
                    error: InsightsUnavailable) -> str:
    context = current()
    if attempt >= len(INSIGHTS_RETRY_S):
        log.error("analysis_failed", reason="insights_unavailable", attempts=attempt + 1,
                  message=str(error))
        metrics.inc("callwatch_analyses", outcome="failed")
        _no_crash_retry()
        raise error
    delay = max(error.retry_after or 0, INSIGHTS_RETRY_S[attempt]) * random.uniform(1.0, 1.2)  # noqa: S311 (jitter)
    schedule_analysis(context.redis, call_json, delay_s=delay, recheck=recheck,
                      attempt=attempt + 1)
    log.warning("analysis_retry_scheduled", delay_s=round(delay, 1), attempt=attempt + 1,
                status=error.status)
    metrics.inc("callwatch_analyses", outcome="retry")
    return "retry"


def _retry_delivery(metrics: Metrics, sink_id: str, envelope: dict[str, Any], attempt: int,
                    hop: int, error: DeliveryRetryable) -> str:
    """Reschedule: a pace wait costs no attempt; a failure uses the next wait of the list."""
    context = current()
    waits = context.settings.delivery_retry_seconds
    paced = isinstance(error, DeliveryPaced)
    booked = isinstance(error, DeliveryPaced) and error.booked
    if paced:
        # A booked slot is exact; an alert another worker is sending gets a little jitter.
        delay = error.retry_after or 1.0
        if not booked:
            delay += random.uniform(0, 1.0)  # noqa: S311 (jitter)
        next_attempt = attempt
        metrics.inc("callwatch_deliveries", sink=sink_id, outcome="paced")
    else:
        if attempt >= len(waits):
            log.error("alert_delivery_failed", attempts=attempt + 1, status=error.status,
                      message=str(error))
            metrics.inc("callwatch_deliveries", sink=sink_id, outcome="failed")
            _no_crash_retry()
            raise error
        delay = error.retry_after if error.retry_after is not None else waits[attempt]
        next_attempt = attempt + 1
        metrics.inc("callwatch_deliveries", sink=sink_id, outcome="retry")
        log.warning("alert_delivery_retry_scheduled", delay_s=round(delay, 1),
                    attempt=next_attempt, status=error.status)
    schedule_delivery(context.redis, sink_id, envelope, delay_s=delay, attempt=next_attempt,
                      hop=hop + 1, booked=booked)
    return "paced" if paced else "retry"


def _insights_request(metrics: Metrics, status: int | None, seconds: float) -> None:
    metrics.inc("callwatch_insights_requests", status=str(status) if status else "error")
    metrics.observe("callwatch_insights_request_duration_seconds", seconds)


def _bind(**values: str) -> None:
    """Fresh log context per job: the job id and what the job is about."""
    structlog.contextvars.clear_contextvars()
    job = get_current_job()
    structlog.contextvars.bind_contextvars(job_id=job.id if job else None, **values)


def _no_crash_retry() -> None:
    """A permanent failure: do not let the crash-recovery retry run this job again."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
