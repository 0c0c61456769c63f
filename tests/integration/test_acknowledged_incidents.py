"""An acknowledged incident, against real Redis: chat sinks get no more ``updated``
messages (and their ``resolved`` need not wait for one), the others still do."""

from __future__ import annotations

from datetime import UTC, datetime

import redis as redis_lib

from devtools.sample_alerts import sample_alert
from service.analysis.alert import Alert
from service.decisions import Done
from service.delivery.incidents.acknowledge import acknowledge
from service.delivery.incidents.desk import IncidentDesk
from service.delivery.incidents.event_order import EventOrder
from service.delivery.incidents.events import IncidentEvent, is_incident_message
from service.delivery.incidents.policy import StormPolicy
from service.delivery.incidents.store import IncidentStore
from service.delivery.incidents.timer import check_step
from service.delivery.ledger import DeliveryLedger
from service.delivery.routing import RouteMatch
from service.delivery.step import DeliveryRequest, deliver_step

KINDS = {"slack": "chat", "pager": "pager", "crm": "webhook"}
STORM = StormPolicy(calls=2, within_s=60, update_every_s=30, resolve_after_s=100)
T0 = 1_800_000_000.0


def alert_n(n: int) -> Alert:
    return sample_alert(call_sid=f"CA{n:032x}", issues=1)


class Recorder:
    """A sink that keeps what it is given (only the event order is under test here)."""

    pace_s = None

    def __init__(self, name: str) -> None:
        self.name, self.kind, self.events = name, KINDS[name], []  # type: ignore[var-annotated]

    def send(self, alert: Alert) -> None:
        raise AssertionError("no per-call alert expected")

    def send_incident(self, event: IncidentEvent) -> None:
        self.events.append(event.event)


def test_acknowledged_incident_stops_updates_to_chat_sinks_only(redis: redis_lib.Redis) -> None:
    """After "Acknowledge", ``updated`` goes to the pager and the webhook but not to Slack,
    whose ``resolved`` then goes at once instead of waiting for the skipped update."""
    now = [T0]
    match = RouteMatch("default", tuple(KINDS), STORM, None)
    desk = IncidentDesk(IncidentStore(redis), lambda alert: [match], KINDS.__getitem__,
                        clock=lambda: now[0])
    opened = [d for n in (1, 2) for d in desk.deliveries(alert_n(n), alert_n(n).to_envelope())]
    incident_id = desk.checks[0][0]
    assert acknowledge(redis, incident_id, "bob", datetime.fromtimestamp(T0, UTC)) is not None
    now[0] = T0 + 10
    desk.deliveries(alert_n(3), alert_n(3).to_envelope())
    order = EventOrder(redis, clock=lambda: now[0])
    updated = check_step(incident_id, store=IncidentStore(redis), now=T0 + 40,
                         kind_of=KINDS.__getitem__, order=order)
    assert updated.event == "updated"
    assert sorted(d.sink for d in updated.deliveries) == ["crm", "pager"]
    assert updated.deliveries[0].message["data"]["acknowledged_by"] == "bob"
    resolved = check_step(incident_id, store=IncidentStore(redis), now=T0 + 200,
                          kind_of=KINDS.__getitem__, order=order)
    slack, ledger = Recorder("slack"), DeliveryLedger(redis)
    for delivery in [d for d in opened if d.sink == "slack" and is_incident_message(d.message)] + \
            [d for d in resolved.deliveries if d.sink == "slack"]:
        decision = deliver_step(DeliveryRequest("slack", delivery.message), sink=slack,
                                ledger=ledger, pace=None, retry_s=(), order=order)
        assert isinstance(decision, Done)
    assert slack.events == ["opened", "resolved"]
