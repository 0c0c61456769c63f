"""The incident timer: the step that notices "no new call for ``resolve_after_s``".

Nothing sleeps. When an incident opens, its worker schedules a check at the
incident's next due time (``next_check``); each check runs ``check_step``, which
emits ``updated`` (calls joined and ``update_every_s`` passed) or ``resolved`` (a
storm: no new call for ``resolve_after_s``; a ratio: the share under half its
threshold for ``resolve_after_s``), and names the next due time while the incident
is open. A check also hands back the deliveries of the incident's latest event, so
a check re-run after its worker died still delivers what it emitted (each sink's
ledger drops the copies).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from service.decisions import Delivery
from service.delivery.incidents.acknowledge import acknowledged_by
from service.delivery.incidents.event_order import EventOrder
from service.delivery.incidents.events import build_event
from service.delivery.incidents.policy import DEFAULT_RATIO, DEFAULT_STORM
from service.delivery.incidents.store import IncidentStore, Snapshot

log = structlog.get_logger(__name__)


class Counter(Protocol):
    """What the step needs of ``service.metrics.Metrics``."""

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None: ...


def ratio_check_every(snapshot: Snapshot) -> float:
    """How often a ratio incident's share is looked at (s)."""
    window = snapshot.number("ratio_window_s", DEFAULT_RATIO.window_s)
    return max(2.0, min(snapshot.number("resolve_after_s", DEFAULT_RATIO.resolve_after_s), window) / 5)


def next_check(snapshot: Snapshot, now: float) -> float:
    """The epoch second of an open incident's next check (never in the past)."""
    update_every = snapshot.number("update_every_s", DEFAULT_STORM.update_every_s)
    if snapshot.fields.get("trigger") == "ratio":
        due = min(now + ratio_check_every(snapshot), snapshot.number("updated_at", now) + update_every)
    else:
        resolve_after = snapshot.number("resolve_after_s", DEFAULT_STORM.resolve_after_s)
        due = snapshot.number("last_call_at", now) + resolve_after
        if snapshot.number("calls") > snapshot.number("calls_at_last"):
            due = min(due, snapshot.number("updated_at", now) + update_every)
        else:
            due = min(due, now + update_every)
    return float(int(max(due, now + 1)) + 1)


@dataclass(frozen=True)
class CheckOutcome:
    """What one check did (``none``, ``updated``, ``resolved``), what to deliver, and
    when to look again (None: the incident is over)."""

    event: str
    deliveries: tuple[Delivery, ...] = ()
    next_due: float | None = None


def check_step(incident_id: str, *, store: IncidentStore, now: float,
               metrics: Counter | None = None, kind_of: Callable[[str], str] | None = None,
               order: EventOrder | None = None) -> CheckOutcome:
    """Emit the incident's ``updated`` or ``resolved`` event if due; say when to look again.
    Once someone acknowledged the incident, ``updated`` no longer goes to chat sinks
    (``kind_of``): it is settled for them (``order``), so ``resolved`` follows at once."""
    current = store.read(incident_id)
    if current is None:
        log.warning("incident_unknown", incident_id=incident_id)
        return CheckOutcome("none")
    below, ratio = None, None
    if current.fields.get("trigger") == "ratio":
        window = int(current.number("ratio_window_s", DEFAULT_RATIO.window_s))
        analysed, with_alert = store.ratio_counts(current.fields["route"], current.fields["group_id"],
                                                  window, now)
        percent = 100.0 * with_alert / analysed if analysed else 0.0
        below = percent < current.number("ratio_threshold", DEFAULT_RATIO.percent) / 2
        ratio = (analysed, with_alert, percent)
    result = store.check(incident_id, now, below=below, ratio=ratio)
    sinks = json.loads(current.fields.get("sinks") or "[]")
    if result.snapshot is not None:
        snapshot = result.snapshot
        event = build_event(result.event, result.sequence, snapshot, datetime.fromtimestamp(now, UTC))
        message: dict[str, Any] | None = store.save_event(incident_id, result.sequence,
                                                          event.to_message())
        fields = snapshot.fields
        log.info(f"incident_{result.event}", incident_id=incident_id, route=fields.get("route"),
                 trigger=fields.get("trigger"), calls=int(snapshot.number("calls")),
                 calls_since_last=snapshot.calls_since_last, sequence=result.sequence)
        if metrics is not None:
            metrics.inc("callwatch_incidents", route=fields.get("route", ""),
                        trigger=fields.get("trigger", ""), event=result.event)
        after = snapshot
    else:
        saved = store.saved_event(incident_id, result.sequence) if result.sequence else None
        message = saved
        after = store.read(incident_id) or current
    if message and message.get("type") == "incident.updated" and acknowledged_by(after.fields):
        sinks = _quiet_for_acknowledged(sinks, str(message["webhook_id"]), kind_of, order)
    deliveries = tuple(Delivery(sink, message) for sink in sinks) if message else ()
    if after.fields.get("status") != "open":
        return CheckOutcome(result.event, deliveries)
    due = next_check(after, now)
    store.set_check_due(incident_id, due)
    return CheckOutcome(result.event, deliveries, due)


def _quiet_for_acknowledged(sinks: list[str], webhook_id: str,
                            kind_of: Callable[[str], str] | None,
                            order: EventOrder | None) -> list[str]:
    """The sinks an acknowledged incident's ``updated`` still goes to: all but chat sinks,
    for which it is settled (their ``resolved`` must not wait for it)."""
    if kind_of is None:
        return sinks
    kept = []
    for sink in sinks:
        try:
            chat = kind_of(sink) == "chat"
        except Exception:  # a sink gone from the configuration: its job will say so
            chat = False
        if not chat:
            kept.append(sink)
        elif order is not None:
            order.settle(sink, webhook_id)
    return kept
