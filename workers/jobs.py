"""The jobs RQ runs: generic adapters between RQ and the domain's steps.

Each job rebuilds its input from JSON, runs one step (``service.analysis.step``,
``service.delivery.step``) with the worker's collaborators, and turns the step's
decision into one RQ call: ``Done`` schedules the deliveries it names, ``Again``
schedules the same step after ``after_s`` under a new id derived from the data
(every enqueue is ``unique``, so a job re-run after a crash cannot fork the chain),
``Failed`` ends the job in RQ's failed registry without crash retries. Then it logs
and counts. No policy lives here: which sinks, how long to wait and why are the
steps' and the sinks' business.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from rq import get_current_job

from service.analysis.step import AnalysisPolicy, AnalysisRequest, analyze_step
from service.calls import Call
from service.decisions import Again, AnalysisOutcome, Decision, Delivery, DeliveryOutcome, Done, Failed
from service.delivery.incidents.desk import IncidentDesk
from service.delivery.incidents.event_order import EventOrder
from service.delivery.incidents.events import is_incident_message
from service.delivery.incidents.store import IncidentStore
from service.delivery.incidents.timer import check_step
from service.delivery.ledger import DeliveryLedger
from service.delivery.pace import Pace
from service.delivery.silences import screen
from service.delivery.sink_health import SinkHealth
from service.delivery.step import DeliveryRequest, deliver_step, unknown_sink_step
from service.errors import PermanentError
from service.insights.readers import readers_for
from service.intake import Intake
from service.metrics import JobMetrics, Metrics, alert_delivered, alert_labels
from workers.context import WorkerContext, current
from workers.queues import (
    delivery_job_key,
    record_failed_delivery,
    schedule_analysis,
    schedule_delivery,
    schedule_incident_check,
)
from workers.rq_adaptations.sink_lines import release_line, take_slot

log = structlog.get_logger(__name__)


class StepFailed(Exception):
    """A step ended for good (``Failed``): the job goes to RQ's failed registry as this."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def analyze_call(call_json: dict[str, Any], recheck: int = 0, attempt: int = 0,
                 stage: str = "") -> str:
    """Run the analysis step for one call."""
    context = current()
    metrics = JobMetrics(context.redis)
    try:
        return _analyze_call(context, metrics, call_json, recheck, attempt, stage)
    finally:
        metrics.flush()


def _analyze_call(context: WorkerContext, metrics: Metrics, call_json: dict[str, Any],
                  recheck: int, attempt: int, stage: str) -> str:
    request = AnalysisRequest(Call.from_json(call_json), recheck, attempt, stage)
    _bind(call_sid=request.call.call_sid)
    log.info("analysis_started", recheck=recheck, attempt=attempt, **request.call.log_fields())
    # --- legs (issue 20): the call's own account's readers, and child legs to the intake ---
    try:
        readers = readers_for(context.settings, context.accounts, request.call.account_sid,
                              session=context.session,
                              on_request=lambda api, status, seconds: _twilio_request(
                                  metrics, api, status, seconds))
    except PermanentError as error:  # an account no longer watched
        log.error("analysis_failed", reason=error.reason, message=str(error))
        return _act(Failed(AnalysisOutcome.FAILED, error.reason, str(error)), metrics,
                    "callwatch_analyses", {}, again=lambda d: None)
    client = readers.events
    intake = Intake(context.redis)

    def admit(child: Call) -> bool:
        return intake.admit(child.to_json(), due_at=context.clock().timestamp())
    # --- end legs ---
    silences = context.silences.in_force()  # read with the call's count, once
    desk = IncidentDesk(IncidentStore(context.redis), context.router.route,
                        lambda name: context.sinks.get(name).kind, metrics=metrics,
                        clock=lambda: context.clock().timestamp(), reads=(silences,))
    result = analyze_step(
        request, fetch=lambda sid: client.fetch_events(sid, context.settings.events_edges),
        policy=AnalysisPolicy.from_settings(context.settings), route=context.router.sinks,
        now=context.clock(), incidents=desk,
        screen=lambda alert: screen(alert, router=context.router, silences=silences),
        legs=readers.legs, admit=admit)
    for incident_id, due in desk.checks:
        schedule_incident_check(context.redis, incident_id, due)
    if result.events:
        metrics.inc("callwatch_insights_events_fetched", result.events)
    if result.alert is not None:
        routes = [match.route for match in context.router.route(result.alert)]
        metrics.inc("callwatch_alerts", 1.0, **alert_labels(result.alert, routes))
    if result.dropped:
        metrics.inc(f"callwatch_alerts_{result.dropped}")
    return _act(result.decision, metrics, "callwatch_analyses", {},
                again=lambda d: schedule_analysis(context.redis, call_json, delay_s=d.after_s,
                                                  **d.state))


def deliver_alert(sink: str, envelope: dict[str, Any], attempt: int = 0, hop: int = 0,
                  booked: bool = False, waiting_since: float | None = None) -> str:
    """Run the delivery step for one message and one sink."""
    context = current()
    metrics = JobMetrics(context.redis)
    try:
        return _deliver_alert(context, metrics, sink, envelope, attempt, hop, booked,
                              waiting_since)
    finally:
        metrics.flush()


def _deliver_alert(context: WorkerContext, metrics: Metrics, sink: str, envelope: dict[str, Any],
                   attempt: int, hop: int, booked: bool, waiting_since: float | None, *,
                   inline: bool = False) -> str:
    """One delivery step and its RQ call. ``inline``: run within another job (the analysis),
    whose own crash retries this delivery's outcome must leave alone, in a slot taken while
    the sink was not marked slow (``take_slot``)."""
    request = DeliveryRequest(sink, envelope, attempt=attempt, booked=booked)
    if is_incident_message(envelope):
        _bind(incident_id=envelope["data"]["incident_id"], webhook_id=request.message_id, sink=sink)
    else:
        _bind(call_sid=envelope["data"]["call"]["call_sid"], alert_id=request.message_id, sink=sink)
    labels = {"sink": sink}
    started = time.monotonic()
    try:
        target = context.sinks.get(sink)
    except PermanentError:  # not in this process's configuration: another may know it
        decision = unknown_sink_step(request, waiting_since=waiting_since,
                                     now=context.clock().timestamp(), known=context.sinks.names)
        return _act(decision, metrics, "callwatch_deliveries", labels, inline=inline,
                    again=lambda d: schedule_delivery(context.redis, sink, envelope,
                                                      delay_s=d.after_s, hop=hop + 1, **d.state))
    pace = Pace(context.redis, interval_s=target.pace_s) if target.pace_s else None
    ledger = DeliveryLedger(context.redis, holder=_worker_name())
    decision = deliver_step(request, sink=target, ledger=ledger, pace=pace,
                            retry_s=context.settings.delivery_retry_seconds,
                            order=EventOrder(context.redis),
                            health=SinkHealth(context.redis, unmarked=inline))
    if not (isinstance(decision, Again) and decision.outcome == DeliveryOutcome.PACED):
        # The time spent sending, not waiting for a turn.
        metrics.observe("callwatch_delivery_duration_seconds", time.monotonic() - started, **labels)
    if decision.outcome == DeliveryOutcome.DELIVERED and not is_incident_message(envelope):
        alert_delivered(metrics, envelope["data"]["call"], context.sinks.spec(sink).type,
                        context.clock().timestamp())
    return _act(decision, metrics, "callwatch_deliveries", labels, inline=inline,
                again=lambda d: schedule_delivery(context.redis, sink, envelope, delay_s=d.after_s,
                                                  hop=hop + 1, **d.state))


def check_incident(incident_id: str, due: float) -> str:
    """Run an incident's timer step; schedule its next run and what it emitted."""
    context = current()
    _bind(incident_id=incident_id)
    outcome = check_step(incident_id, store=IncidentStore(context.redis),
                         now=context.clock().timestamp(), metrics=Metrics(context.redis),
                         kind_of=lambda name: context.sinks.get(name).kind,
                         order=EventOrder(context.redis))
    if outcome.next_due is not None:
        schedule_incident_check(context.redis, incident_id, outcome.next_due)
    for delivery in outcome.deliveries:
        schedule_delivery(context.redis, delivery.sink, delivery.message)
    return outcome.event


def _act(decision: Decision, metrics: Metrics, counter: str, labels: dict[str, str],
         *, again: Callable[[Again], object], inline: bool = False) -> str:
    """Turn a step's decision into one RQ call, count it, and return its outcome. An
    ``inline`` step (a delivery sent within the analysis job) never touches the running
    job's crash retries: they belong to the job's own step."""
    metrics.inc(counter, 1.0, **{"outcome": str(decision.outcome), **labels})
    if isinstance(decision, Done):
        for delivery in decision.deliveries:
            _send_or_queue(delivery, metrics)
    elif isinstance(decision, Again):
        again(decision)
    else:
        if not inline:
            _no_crash_retry()
        raise StepFailed(decision.reason, decision.message)
    return str(decision.outcome)


def _send_or_queue(delivery: Delivery, metrics: Metrics) -> None:
    """Send now, within this job, to an unpaced sink with a free slot (not slow, not holding
    every worker process but one); else queue a delivery job. Sending inline saves a whole
    RQ job per alert and sink (enqueue, dequeue, bookkeeping: ``bench/e2e.py``, worker CPU
    per alerting call); the step, the ledger and the slots are the same either way.

    Whatever goes wrong in an inline send other than the step's own ``Failed`` (a Redis
    error in a failover, a bug in a sink) queues a delivery job for this sink, which tries
    again with its own retries; the caller goes on with its other sinks."""
    context = current()
    sink, message = delivery.sink, delivery.message
    try:
        paced = context.sinks.get(sink).pace_s is not None
    except PermanentError:
        paced = True  # unknown here: its job waits for a worker that knows it
    slot = delivery_job_key(sink, message)
    if paced or not take_slot(context.redis, sink, slot):
        schedule_delivery(context.redis, sink, message)
        return
    unexpected: Exception | None = None
    try:
        _deliver_alert(context, metrics, sink, message, 0, 0, False, None, inline=True)
    except StepFailed as failed:  # logged by the step; kept for ``rq requeue`` as its job would be
        record_failed_delivery(context.redis, sink, message, failed.reason)
    except Exception as error:  # one sink's trouble must not cost the others
        unexpected = error
    finally:
        release_line(context.redis, sink, slot)
    if unexpected is not None:
        # The type only: a message could carry a receiver's URL. The ledger keeps the
        # queued job from sending twice if the send itself went through.
        log.warning("delivery_inline_failed", sink=sink, error=type(unexpected).__name__)
        schedule_delivery(context.redis, sink, message)


def _insights_request(metrics: Metrics, status: int | None, seconds: float) -> None:
    metrics.inc("callwatch_insights_requests", status=str(status) if status else "error")
    metrics.observe("callwatch_insights_request_duration_seconds", seconds)


def _bind(**values: str) -> None:
    """Fresh log context per job: the job id and what the job is about."""
    structlog.contextvars.clear_contextvars()
    job = get_current_job()
    structlog.contextvars.bind_contextvars(job_id=job.id if job else None, **values)


def _worker_name() -> str:
    """The worker running this job ("" outside one): its leases are taken over once it is
    known dead (``service.delivery.ledger``)."""
    job = get_current_job()
    return (job.worker_name or "") if job is not None else ""


def _no_crash_retry() -> None:
    """A permanent failure: do not let the crash-recovery retry run this job again."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0


def _twilio_request(metrics: Metrics, api: str, status: int | None, seconds: float) -> None:
    """Insights requests as before; Calls API requests (child legs) counted apart."""
    if api == "insights":
        _insights_request(metrics, status, seconds)
    else:
        metrics.inc("callwatch_calls_api_requests", status=str(status) if status else "error")
