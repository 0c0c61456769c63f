"""The delivery step: send one message through one sink, exactly once, at the sink's pace.

Domain code: it knows nothing of RQ. ``deliver_step`` returns a ``Decision``
(``service.decisions``): ``Done`` (``delivered``, or ``duplicate`` when the ledger
says the sink already took it), ``Again`` (paced: come back at the booked slot;
another worker holds the lease; the receiver asked to retry), or ``Failed`` (the
receiver refused for good, or the retry waits are used up).

Policy lives here and in the sink: the retry waits (``DELIVERY_RETRY_SECONDS``,
the receiver's ``Retry-After`` first), and the sink's own pace (``AlertSink.pace_s``;
Slack's is one message a second per webhook). A pace wait is not slept in the
worker: the step books the next free slot and asks to be run again then, so a
paced Slack alert never holds up another sink's alert or an analysis; only the
last fraction of a second before its own turn (``INLINE_WAIT_S``) is waited in place.

A message is a ``call.alert`` envelope (sent with ``sink.send``) or an incident event
(``sink.send_incident``), keyed by its ``webhook-id``: the alert id, or
``<incident_id>:<sequence>``. An incident's events reach each sink in order: event N
waits (``Again``) until the sink took event N-1, or gave up on it for good.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.exceptions import RedisError

from service.analysis.alert import Alert
from service.decisions import Again, Decision, DeliveryOutcome, Done, Failed
from service.delivery import UNKNOWN_SINK_WAIT_S
from service.delivery.incidents.event_order import EventOrder
from service.delivery.incidents.events import IncidentEvent, is_incident_message, message_id
from service.delivery.incidents.pager_groups import PagerGroup
from service.delivery.ledger import ALREADY_DELIVERED, DEFAULT_LEASE_S, DeliveryLedger
from service.delivery.pace import Pace
from service.delivery.sink_health import SinkHealth
from service.delivery.sinks.base import AlertSink
from service.errors import DeliveryRejected, DeliveryRetryable

log = structlog.get_logger(__name__)

#: The longest a delivery waits in the worker for its paced turn (less than one tick of
#: the scheduler); longer waits are rescheduled.
INLINE_WAIT_S = 0.5
#: RQ's scheduler releases jobs on whole seconds.
SCHEDULER_TICK_S = 1.0
#: The next send of a sink's line of missed sends waits in place for at most this many
#: turns (a second each for Slack): coming back through the scheduler would lose ticks.
NEXT_IN_LINE_WAITS = 2


@dataclass(frozen=True)
class DeliveryRequest:
    """One run of the step: which sink, which message, and what came before."""

    sink: str
    message: dict[str, Any]
    attempt: int = 0
    #: True when an earlier run booked this message's send slot (come back at it, don't book again).
    booked: bool = False

    @property
    def message_id(self) -> str:
        return message_id(self.message)


def deliver_step(request: DeliveryRequest, *, sink: AlertSink, ledger: DeliveryLedger,
                 pace: Pace | None, retry_s: tuple[int, ...], lease_s: float = DEFAULT_LEASE_S,
                 jitter: Callable[[], float] = lambda: random.uniform(0, 1.0),  # noqa: S311
                 order: EventOrder | None = None, health: SinkHealth | None = None,
                 clock: Callable[[], float] = time.monotonic) -> Decision:
    """Send the message unless the sink already took it; say what should happen next.

    With ``health``, each send's duration marks the sink slow or healthy
    (``service.delivery.sink_health``)."""
    timed = _timed(request.sink, health, clock)
    name, message_id = request.sink, request.message_id
    if is_incident_message(request.message):
        return _deliver_event(request, IncidentEvent.from_message(request.message), sink=sink,
                              ledger=ledger, pace=pace, retry_s=retry_s, lease_s=lease_s,
                              jitter=jitter, order=order, timed=timed)
    alert = Alert.from_envelope(request.message)
    fields = {"sink": name, "alert_id": message_id, "call_sid": alert.call.call_sid}
    send: Callable[[], None] = lambda: sink.send(alert)  # noqa: E731
    # sizes: a per-call page to PagerDuty goes out on its group's key (incidents.pager_groups).
    group, send_grouped = PagerGroup.from_message(request.message), getattr(sink, "send_grouped", None)
    if group is not None and send_grouped is not None:
        send = lambda: send_grouped(alert, group)  # noqa: E731
    return _deliver(request, timed(send), fields, "alert", ledger=ledger, pace=pace,
                    retry_s=retry_s, lease_s=lease_s, jitter=jitter)


def _deliver_event(request: DeliveryRequest, event: IncidentEvent, *, sink: AlertSink,
                   ledger: DeliveryLedger, pace: Pace | None, retry_s: tuple[int, ...],
                   lease_s: float, jitter: Callable[[], float], order: EventOrder | None,
                   timed: Callable[[Callable[[], None]], Callable[[], None]]) -> Decision:
    """An incident event: after the one before it, then like an alert."""
    name = request.sink
    fields = {"sink": name, "incident_id": event.incident_id, "webhook_id": event.webhook_id}
    if order is not None and not ledger.is_delivered(name, event.webhook_id):
        wait = order.wait_for_previous(name, event)
        if wait > 0:
            log.info("incident_delivery_retry", reason="ordered", retry_after=wait, **fields)
            return Again(DeliveryOutcome.PACED, wait + jitter(), _state(request))
    send_incident = getattr(sink, "send_incident", None)
    if send_incident is None:
        decision: Decision = Failed(DeliveryOutcome.REJECTED, "unsupported",
                                    f"sink {name} cannot send incident events")
        log.error("incident_delivery_rejected", reason="unsupported", **fields)
    else:
        decision = _deliver(request, timed(lambda: send_incident(event)), fields, "incident",
                            ledger=ledger, pace=pace, retry_s=retry_s, lease_s=lease_s,
                            jitter=jitter)
    if isinstance(decision, Failed) and order is not None:
        order.settle(name, event.webhook_id)
    return decision


def _deliver(request: DeliveryRequest, send: Callable[[], None], fields: dict[str, str], what: str,
             *, ledger: DeliveryLedger, pace: Pace | None, retry_s: tuple[int, ...],
             lease_s: float, jitter: Callable[[], float]) -> Decision:
    """Claim, pace, send once and record: the same for an alert and an incident event."""
    name, message_id = request.sink, request.message_id
    if pace is not None:
        # The turn first, the lease after: a worker killed while it waits for its turn
        # must not leave a lease that holds the message's recovery for its whole length.
        if ledger.is_delivered(name, message_id):
            log.info(f"{what}_delivery_duplicate", **fields)
            return Done(DeliveryOutcome.DUPLICATE)
        wait = _turn(pace, name, message_id, booked=request.booked)
        if wait > 0:
            log.info(f"{what}_delivery_retry", reason="paced", retry_after=round(wait, 3),
                     **fields)
            return Again(DeliveryOutcome.PACED, wait, _state(request, booked=True))
    held = ledger.take(name, message_id, lease_s=lease_s)  # one round trip, atomic
    if held == ALREADY_DELIVERED:
        log.info(f"{what}_delivery_duplicate", **fields)
        return Done(DeliveryOutcome.DUPLICATE)
    if held > 0:
        log.info(f"{what}_delivery_retry", reason="in_flight", retry_after=held, **fields)
        return Again(DeliveryOutcome.PACED, held + jitter(), _state(request))
    finished = False
    try:
        try:
            send()
        except DeliveryRetryable as err:
            log.warning(f"{what}_delivery_retry", reason="receiver", error=str(err),
                        status=err.status, retry_after=err.retry_after, **fields)
            if pace is not None and err.retry_after:
                pace.pause(name, err.retry_after)
            return _retry(request, retry_s, err)
        except DeliveryRejected as err:
            log.error(f"{what}_delivery_rejected", reason=err.reason, status=err.status,
                      error=str(err), **fields)
            return Failed(DeliveryOutcome.REJECTED, err.reason, str(err))
        ledger.finish(name, message_id)  # recorded and the lease let go, in one round trip
        finished = True
    finally:
        if not finished:
            ledger.release(name, message_id)
    log.info(f"{what}_delivered", **fields)
    return Done(DeliveryOutcome.DELIVERED)


def _turn(pace: Pace, name: str, message_id: str, *, booked: bool) -> float:
    """0.0 when this send may go now (the turn is taken), else the seconds to come back.

    A message that has no slot yet books the next free one, so a burst is spread one
    slot apart instead of every job waking each second to compete. At its slot it takes
    the turn, or, when the turn is taken (late jobs bunching, a receiver's pause), joins
    the sink's line of missed sends (``Pace.take_turn``), which goes ahead of every later
    booking: the next of that line waits for its turn in place (at most
    ``NEXT_IN_LINE_WAITS`` turns), the others come back about when theirs is due. A turn
    at most ``INLINE_WAIT_S`` away is waited for in place too: the scheduler runs jobs on
    whole seconds, so rescheduling a sub-second wait would lose a whole tick.
    """
    if not booked:
        wait = pace.book(name)
        if wait > INLINE_WAIT_S:
            return _early(wait)
        pace.sleep(wait)
    for _ in range(NEXT_IN_LINE_WAITS + 2):
        wait, place = pace.take_turn(name, message_id,
                                     waits_up_to=pace.interval_s * NEXT_IN_LINE_WAITS)
        if wait <= 0 and place == 0:
            return 0.0
        if place > 0:
            return _early(max(wait, place * pace.interval_s))
        if wait > pace.interval_s * NEXT_IN_LINE_WAITS:
            return _early(wait)  # a receiver's pause: come back as it ends, first in line
        # Next in line: the turn is ours once it is free (or its holder comes back).
        pace.sleep(min(max(wait, 0.05), pace.interval_s))
    return pace.interval_s


def _early(wait: float) -> float:
    """Come back within the second before the turn rather than after it: the scheduler
    releases jobs on whole seconds (rounding up), so a send due at 12.1 s would arrive at
    13 s and leave the turn unused for 0.9 s; arriving at 12 s it waits the last fraction
    for its turn in place (``take_turn``'s next in line)."""
    return max(wait - SCHEDULER_TICK_S, 0.05)


def unknown_sink_step(request: DeliveryRequest, *, waiting_since: float | None,
                      now: float, known: list[str]) -> Decision:
    """A delivery for a sink this process does not know (a rollout's old and new workers
    overlap, or a worker started without the routing file): leave it for a process that
    knows the sink (``Again`` at once, with when it started waiting: the edge puts it where
    only such processes look), for up to ``UNKNOWN_SINK_WAIT_S``; then fail it with
    ``unknown_sink``."""
    since = now if waiting_since is None else waiting_since
    waited = now - since
    fields = {"sink": request.sink, "message_id": request.message_id}
    if waited >= UNKNOWN_SINK_WAIT_S:
        message = (f"no worker knew sink {request.sink!r} for {waited / 60:.0f} min "
                   f"(this one knows {', '.join(known) or 'none'})")
        log.error("alert_delivery_rejected", reason="unknown_sink", message=message, **fields)
        return Failed(DeliveryOutcome.REJECTED, "unknown_sink", message)
    log.warning("delivery_left_for_another_worker", reason="unknown_sink",
                waited_s=round(waited, 1), **fields)
    return Again(DeliveryOutcome.PACED, 0.0, {**_state(request), "waiting_since": since})


def _timed(sink: str, health: SinkHealth | None,
           clock: Callable[[], float]) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Wrap a send so that its duration, and whether the receiver answered, mark the sink
    slow or healthy; nothing without ``health``."""
    def wrap(send: Callable[[], None]) -> Callable[[], None]:
        if health is None:
            return send

        def timed_send() -> None:
            started = clock()
            answered = True
            try:
                send()
            except DeliveryRetryable as err:
                answered = err.status is not None
                raise
            finally:
                took = clock() - started
                try:
                    if health.record(sink, took, answered=answered):
                        log.warning("sink_slow", sink=sink, seconds=round(took, 1))
                except RedisError:
                    pass  # the send's own outcome matters more than the mark
        return timed_send
    return wrap


def _retry(request: DeliveryRequest, retry_s: tuple[int, ...], error: DeliveryRetryable) -> Decision:
    """The next wait of the list (the receiver's ``Retry-After`` first), or give up."""
    if request.attempt >= len(retry_s):
        log.error("alert_delivery_failed", attempts=request.attempt + 1, status=error.status,
                  message=str(error))
        return Failed(DeliveryOutcome.FAILED, "retries_exhausted", str(error))
    delay = error.retry_after if error.retry_after is not None else retry_s[request.attempt]
    log.warning("alert_delivery_retry_scheduled", delay_s=round(delay, 1),
                attempt=request.attempt + 1, status=error.status)
    return Again(DeliveryOutcome.RETRY, delay, _state(request, attempt=request.attempt + 1))


def _state(request: DeliveryRequest, *, attempt: int | None = None,
           booked: bool | None = None) -> dict[str, Any]:
    return {"attempt": request.attempt if attempt is None else attempt,
            "booked": request.booked if booked is None else booked}
