"""Sending digests: what is due, each once per sink and period, and the sink that counts.

``send_due`` is safe to run from every worker at once, as often as wanted (the worker
edge runs it every few seconds): each sink and period goes through the delivery
ledger (a lease while one worker sends it, then "delivered"). ``DigestingSink`` stands
for a sink with ``digest:`` in the delivery step: it counts what it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from service.analysis.alert import Alert
from service.delivery.digests.periods import (
    DigestPolicy,
    Period,
    current_period,
    last_finished,
    parse_digest,
    previous_boundary,
)
from service.delivery.digests.store import Digest, DigestStore, digest_message_id
from service.delivery.incidents.grouping import describe_group
from service.delivery.ledger import DeliveryLedger
from service.errors import DeliveryRejected, DeliveryRetryable

log = structlog.get_logger(__name__)

#: How long one worker may spend sending a digest before another may try.
SEND_LEASE_S = 60.0


class DigestTarget(Protocol):
    """What sends a digest: the sink's own renderer and its delivery path."""

    def __call__(self, digest: Digest) -> None: ...


@dataclass(frozen=True)
class DigestSink:
    """A configured sink that takes digests: its name, its policy, how a digest is sent."""

    name: str
    policy: DigestPolicy
    send: DigestTarget
    #: The sink's pace (Slack: a message a second), shared with its alerts.
    pace_s: float | None = None


class Turn(Protocol):
    """``service.delivery.pace.Pace.reserve``: 0.0 when the sink's turn is taken, else the wait."""

    def __call__(self, sink: str, interval_s: float) -> float: ...


def send_due(sinks: Iterable[DigestSink], *, store: DigestStore, ledger: DeliveryLedger,
             now: datetime, turn: Turn | None = None) -> list[tuple[str, str]]:
    """Send every digest whose period has ended (the last one, and the one before it) and
    that no worker has sent; returns
    (sink, outcome) for each one this call decided: ``sent``, ``empty``, ``retry``,
    ``paced`` (the sink's turn is taken: next tick), ``rejected``. Safe to run from every
    worker at once, as often as wanted."""
    decided = []
    for sink in sinks:
        last = last_finished(sink.policy, now)
        # The period before too: its digest may still be owed (the receiver was down then).
        for period in (Period(previous_boundary(sink.policy, last.start), last.start), last):
            message_id = digest_message_id(period)
            # Sent already, or another worker's lease: one round trip, atomic.
            if ledger.take(sink.name, message_id, lease_s=SEND_LEASE_S) != 0.0:
                continue
            try:
                decided.append((sink.name, _send_one(sink, period, store=store, ledger=ledger,
                                                     turn=turn)))
            finally:
                ledger.release(sink.name, message_id)
    return decided


def _send_one(sink: DigestSink, period: Period, *, store: DigestStore,
              ledger: DeliveryLedger, turn: Turn | None) -> str:
    digest = store.read(sink.name, sink.policy, period)
    fields = {"sink": sink.name, "period_start": period.start.isoformat(),
              "period_end": period.end.isoformat()}
    if digest.is_empty:
        ledger.mark_delivered(sink.name, digest.message_id)
        log.info("digest_empty", **fields)
        return "empty"
    if turn is not None and sink.pace_s and turn(sink.name, sink.pace_s) > 0:
        return "paced"
    try:
        sink.send(digest)
    except DeliveryRetryable as error:
        log.warning("digest_delivery_retry", error=str(error), status=error.status, **fields)
        return "retry"
    except DeliveryRejected as error:
        # Settled: retrying a refused digest every tick would only repeat the refusal.
        ledger.mark_delivered(sink.name, digest.message_id)
        log.error("digest_delivery_rejected", reason=error.reason, error=str(error), **fields)
        return "rejected"
    ledger.mark_delivered(sink.name, digest.message_id)
    log.info("digest_delivered", alerts=digest.alerts, calls_analysed=digest.calls_analysed,
             incidents=len(digest.incidents), **fields)
    return "sent"


class DigestingSink:
    """A sink with ``digest:``: alerts and incident events are counted for the period's
    digest instead of being posted (the ledger still records each as taken)."""

    pace_s: float | None = None

    def __init__(self, inner: Any, policy: DigestPolicy, store: DigestStore,
                 clock: Callable[[], datetime]) -> None:
        self.inner = inner
        self.name: str = inner.name
        #: Not the inner sink's kind: a digest counts every alert, even one folded into an
        #: incident during a storm (``service.delivery.incidents.desk.UNFOLDED_KINDS``).
        self.kind: str = "digest"
        self.policy = policy
        self._store = store
        self._clock = clock

    def __repr__(self) -> str:
        return f"DigestingSink({self.inner!r}, {self.policy.describe()})"

    def send(self, alert: Alert) -> None:
        self._store.record_alert(self.name, current_period(self.policy, self._clock()), alert)

    def send_incident(self, event: Any) -> None:
        data = event.data
        line = (f"{event.incident_id}: {data.get('status')}, {data.get('calls')} calls, "
                f"{describe_group(dict(data.get('group') or {}))} (route {data.get('route')})")
        self._store.record_incident(self.name, current_period(self.policy, self._clock()),
                                    event.incident_id, line)


def digest_sinks(sinks: Any) -> list[DigestSink]:
    """The configured sinks with a ``digest:`` option (``service.delivery.sinks.Sinks``), each
    with its policy, its pace and its own ``send_digest``."""
    found = []
    for name in sinks.names:
        raw = sinks.spec(name).options.get("digest")
        if not raw:
            continue
        sink = sinks.get(name)
        # A DigestingSink (a Sinks with Redis) holds the policy parsed when it was built.
        policy = sink.policy if isinstance(sink, DigestingSink) else parse_digest(
            raw, f"sinks.{name}.digest")
        inner = getattr(sink, "inner", sink)
        send = getattr(inner, "send_digest", None)
        if send is not None:
            found.append(DigestSink(name, policy, send, getattr(inner, "pace_s", None)))
    return found
