"""Storms become incidents, against real Redis: grouping, folding once, one incident per group,
the timer's updated/resolved, failure-ratio incidents, and incident events in order per sink."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis as redis_lib

from devtools.redis_server import RedisServer
from devtools.sample_alerts import sample_alert
from service.analysis.alert import Alert
from service.decisions import Again, Delivery, DeliveryOutcome, Done, Failed
from service.delivery.incidents.desk import IncidentDesk
from service.delivery.incidents.event_order import EventOrder
from service.delivery.incidents.events import IncidentEvent, is_incident_message
from service.delivery.incidents.policy import RatioPolicy, StormPolicy
from service.delivery.incidents.store import IncidentStore
from service.delivery.incidents.timer import check_step
from service.delivery.ledger import DeliveryLedger
from service.delivery.routing import RouteMatch
from service.delivery.step import DeliveryRequest, deliver_step
from service.errors import DeliveryRejected

KINDS = {"slack": "chat", "pager": "pager", "crm": "webhook"}
STORM = StormPolicy(calls=3, within_s=60, group_by=("issue",), update_every_s=30, resolve_after_s=100)
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def alert_n(n: int, *, code: int = 31005) -> Alert:
    """Alert number ``n``: its own CallSid; the issue key follows the error code."""
    alert = sample_alert(call_sid=f"CA{n:032x}", issues=1)
    issue = alert.issues[0]
    if code != 31005:
        from dataclasses import replace
        issue = replace(issue, key=f"sdk_edge/connection/error/{code}", error_code=code)
        alert = Alert(alert_id=f"alr_{n}_{code}", created_at=alert.created_at, call=alert.call,
                      issues=(issue,), client=alert.client)
    return alert


def desk_for(redis: redis_lib.Redis, clock: Clock, *, storm: StormPolicy | None = STORM,
             ratio: RatioPolicy | None = None, sinks: tuple[str, ...] = ("slack", "pager", "crm"),
             ) -> IncidentDesk:
    match = RouteMatch("default", sinks, storm, ratio)
    return IncidentDesk(IncidentStore(redis), lambda alert: [match], KINDS.__getitem__, clock=clock)


def split(deliveries: tuple[Delivery, ...]) -> tuple[list[str], list[tuple[str, str]]]:
    """(sinks that get the alert, (sink, event type) pairs)."""
    alerts = [d.sink for d in deliveries if not is_incident_message(d.message)]
    events = [(d.sink, str(d.message["type"])) for d in deliveries if is_incident_message(d.message)]
    return alerts, events


def test_the_calls_th_alert_opens_an_incident_and_later_ones_fold(redis: redis_lib.Redis) -> None:
    """Two alerts go out one by one; the third opens an incident for every sink; later ones
    reach only the webhook sink."""
    clock = Clock()
    desk = desk_for(redis, clock)
    first, second = (split(desk.deliveries(a, a.to_envelope())) for a in (alert_n(1), alert_n(2)))
    assert first == (["slack", "pager", "crm"], []) and second == first
    alerts, events = split(desk.deliveries(alert_n(3), alert_n(3).to_envelope()))
    assert alerts == ["crm"]
    assert events == [("slack", "incident.opened"), ("pager", "incident.opened"),
                      ("crm", "incident.opened")]
    for n in range(4, 9):
        assert split(desk.deliveries(alert_n(n), alert_n(n).to_envelope())) == (["crm"], [])
    incident_id = desk.checks[0][0]
    assert IncidentStore(redis).read(incident_id).number("calls") == 6  # type: ignore[union-attr]


def test_groups_are_per_issue_and_group_by_nothing_takes_the_whole_route(redis: redis_lib.Redis) -> None:
    """Alerts with different issues never open an incident together; ``group_by: []`` does."""
    clock = Clock()
    desk = desk_for(redis, clock)
    for n, code in enumerate((31005, 31009, 31201, 31005, 31009)):
        events = split(desk.deliveries(alert_n(n, code=code), alert_n(n, code=code).to_envelope()))[1]
        assert events == []
    whole = desk_for(redis, clock, storm=StormPolicy(calls=3, group_by=()))
    opened = [split(whole.deliveries(a, a.to_envelope()))[1]
              for a in (alert_n(10, code=31005), alert_n(11, code=31009), alert_n(12, code=31201))]
    assert opened[:2] == [[], []] and len(opened[2]) == 3


def test_a_retried_alert_is_folded_and_counted_once(redis: redis_lib.Redis) -> None:
    """Running the same alert again (a retried job) changes no count and brings back the same
    ``opened`` event for the alert that opened the incident."""
    clock = Clock()
    desk = desk_for(redis, clock)
    for n in (1, 2):
        desk.deliveries(alert_n(n), alert_n(n).to_envelope())
    opened = desk.deliveries(alert_n(3), alert_n(3).to_envelope())
    again = desk_for(redis, clock).deliveries(alert_n(3), alert_n(3).to_envelope())
    assert [d.message for d in again] == [d.message for d in opened]
    desk.deliveries(alert_n(4), alert_n(4).to_envelope())
    for _ in range(3):
        assert split(desk.deliveries(alert_n(4), alert_n(4).to_envelope())) == (["crm"], [])
        assert split(desk.deliveries(alert_n(1), alert_n(1).to_envelope()))[0] == ["slack", "pager", "crm"]
    snapshot = IncidentStore(redis).read(desk.checks[0][0])
    assert snapshot is not None and snapshot.number("calls") == 2
    assert snapshot.samples == (alert_n(3).call.call_sid, alert_n(4).call.call_sid)


@pytest.fixture
def connections(redis_server: RedisServer, redis: redis_lib.Redis) -> Iterator[list[redis_lib.Redis]]:
    clients = [redis_lib.Redis.from_url(redis_server.url) for _ in range(8)]
    yield clients
    for client in clients:
        client.close()


def test_concurrent_workers_open_one_incident(redis: redis_lib.Redis,
                                              connections: list[redis_lib.Redis]) -> None:
    """Eight workers, each with its own connection, observing 80 alerts of one group at once:
    one incident; every alert is either sent one by one or folded, never both."""
    clock = Clock()
    barrier = threading.Barrier(len(connections))

    def work(index: int) -> list[tuple[str, list[str], list[tuple[str, str]]]]:
        desk = desk_for(connections[index], clock, storm=StormPolicy(calls=10, within_s=60))
        barrier.wait()
        out = []
        for n in range(index, 80, len(connections)):
            alerts, events = split(desk.deliveries(alert_n(n), alert_n(n).to_envelope()))
            out.append((alert_n(n).alert_id, alerts, events))
        return out

    with ThreadPoolExecutor(len(connections)) as pool:
        results = [r for rs in pool.map(work, range(len(connections))) for r in rs]
    opened = [r for r in results if r[2]]
    sent = [r for r in results if "slack" in r[1]]
    assert len(opened) == 1
    incident = IncidentStore(redis).recent(T0 - 1)
    assert len(incident) == 1
    assert len(sent) + incident[0].number("calls") == 80


def run_check(redis: redis_lib.Redis, incident_id: str, now: float) -> tuple[str, list[IncidentEvent]]:
    outcome = check_step(incident_id, store=IncidentStore(redis), now=now)
    return outcome.event, [IncidentEvent.from_message(d.message) for d in outcome.deliveries]


def test_updated_only_when_calls_joined_and_resolved_after_quiet(redis: redis_lib.Redis) -> None:
    """``updated`` at most every update_every_s and only with new calls; ``resolved`` after
    resolve_after_s without a call, with the totals; then the group starts afresh."""
    clock = Clock()
    desk = desk_for(redis, clock)
    for n in (1, 2, 3):
        desk.deliveries(alert_n(n), alert_n(n).to_envelope())
    incident_id, due = desk.checks[0]
    assert due <= T0 + STORM.update_every_s + 2
    assert run_check(redis, incident_id, T0 + 31)[0] == "none"  # no call joined
    clock.now = T0 + 40
    desk.deliveries(alert_n(4), alert_n(4).to_envelope())
    desk.deliveries(alert_n(5), alert_n(5).to_envelope())
    event, sent = run_check(redis, incident_id, T0 + 45)
    assert event == "updated"
    assert sent[0].webhook_id == f"{incident_id}:2"
    assert sent[0].data["calls"] == 3 and sent[0].data["calls_since_last"] == 2
    assert run_check(redis, incident_id, T0 + 50)[0] == "none"
    event, sent = run_check(redis, incident_id, T0 + 140)
    assert event == "resolved"
    data = sent[0].data
    assert (data["status"], data["calls"], sent[0].sequence) == ("resolved", 3, 3)
    assert data["resolved_at"] is not None and data["by_error_code"] == {"31005": 3}
    assert run_check(redis, incident_id, T0 + 200)[0] == "none"
    clock.now = T0 + 300
    assert split(desk.deliveries(alert_n(6), alert_n(6).to_envelope()))[0] == ["slack", "pager", "crm"]


def test_incident_payload_keeps_the_contract(redis: redis_lib.Redis) -> None:
    """The ``opened`` event carries every field of the contract, counts and samples."""
    clock = Clock()
    desk = desk_for(redis, clock)
    deliveries = [d for n in (1, 2, 3) for d in desk.deliveries(alert_n(n), alert_n(n).to_envelope())]
    event = IncidentEvent.from_message(next(d.message for d in deliveries if is_incident_message(d.message)))
    assert set(event.data) == {
        "schema_version", "incident_id", "route", "group", "trigger", "status", "opened_at",
        "updated_at", "resolved_at", "calls", "calls_since_last", "by_issue", "by_error_code",
        "by_sdk", "by_country", "sample_call_sids", "ratio", "acknowledged_by"}
    assert event.data["group"] == {"issue": "sdk_edge/connection/error/31000"}
    assert event.data["by_sdk"] == {"twilio-voice-js 2.18.4": 1}
    assert event.data["by_country"] == {"US": 1} and event.data["trigger"] == "storm"
    assert event.webhook_id == f"{event.incident_id}:1" and event.incident_id.startswith("inc_")
    assert "webhook_id" not in event.to_envelope()


def ratio_traffic(desk: IncidentDesk, clock: Clock, *, seconds: int, calls_per_s: int,
                  alert_every: int, start: int) -> list[tuple[str, str]]:
    """``calls_per_s`` analysed calls a second, one in ``alert_every`` with an alert."""
    events: list[tuple[str, str]] = []
    n = start
    for _ in range(seconds):
        for _ in range(calls_per_s):
            n += 1
            desk.analysed()
            if n % alert_every == 0:
                events += split(desk.deliveries(alert_n(n), alert_n(n).to_envelope()))[1]
        clock.now += 1
    return events


RATIO = RatioPolicy(percent=5, min_calls=40, window_s=60, resolve_after_s=30)


def test_three_percent_never_opens_a_ratio_incident(redis: redis_lib.Redis) -> None:
    """3 % of calls alerting, for three windows: no incident."""
    clock = Clock()
    desk = desk_for(redis, clock, storm=None, ratio=RATIO)
    assert ratio_traffic(desk, clock, seconds=180, calls_per_s=5, alert_every=33, start=0) == []
    assert IncidentStore(redis).recent(T0 - 1) == []


def test_twenty_percent_opens_within_a_window_and_recovery_resolves_once(redis: redis_lib.Redis) -> None:
    """20 % sustained opens one ``ratio`` incident within one window; once calls recover,
    exactly one ``resolved`` follows."""
    clock = Clock()
    desk = desk_for(redis, clock, storm=None, ratio=RATIO)
    events = ratio_traffic(desk, clock, seconds=60, calls_per_s=5, alert_every=5, start=0)
    assert events == [("slack", "incident.opened"), ("pager", "incident.opened"),
                      ("crm", "incident.opened")]
    incident = IncidentStore(redis).recent(T0 - 1)
    assert len(incident) == 1 and incident[0].fields["trigger"] == "ratio"
    assert float(incident[0].fields["ratio_percent"]) >= 5
    incident_id = incident[0].incident_id
    resolved = []
    for _ in range(40):  # 200 s of healthy calls, checked every 5 s
        ratio_traffic(desk, clock, seconds=5, calls_per_s=5, alert_every=10_000, start=10_000)
        event, sent = run_check(redis, incident_id, clock.now)
        resolved += [e for e in sent if e.event == "resolved" and event == "resolved"]
    assert len({e.webhook_id for e in resolved}) == 1 and len(resolved) == 3  # one event, three sinks
    assert resolved[0].data["ratio"]["percent"] < 2.5


class EventSink:
    """A sink that records incident events and can refuse one."""

    pace_s: float | None = None
    kind = "chat"

    def __init__(self, refuse: set[int] | None = None) -> None:
        self.name = "slack"
        self.sent: list[str] = []
        self._refuse = refuse or set()

    def send(self, alert: Alert) -> None:
        raise AssertionError("no alerts here")

    def send_incident(self, event: IncidentEvent) -> None:
        if event.sequence in self._refuse:
            raise DeliveryRejected("refused", reason="invalid_payload", status=400)
        self.sent.append(event.webhook_id)


@dataclass
class Events:
    opened: dict[str, object]
    updated: dict[str, object]
    resolved: dict[str, object]


@pytest.fixture
def three_events(redis: redis_lib.Redis) -> Events:
    clock = Clock()
    desk = desk_for(redis, clock, sinks=("slack",))
    found = [d.message for n in (1, 2, 3) for d in desk.deliveries(alert_n(n), alert_n(n).to_envelope())
             if is_incident_message(d.message)]
    incident_id = desk.checks[0][0]
    clock.now = T0 + 40
    desk.deliveries(alert_n(4), alert_n(4).to_envelope())
    found += [d.message for d in check_step(incident_id, store=IncidentStore(redis), now=T0 + 45).deliveries]
    found += [d.message for d in check_step(incident_id, store=IncidentStore(redis), now=T0 + 200).deliveries]
    return Events(*found)


def deliver(redis: redis_lib.Redis, sink: EventSink, message: dict[str, object]) -> object:
    return deliver_step(DeliveryRequest(sink.name, message), sink=sink, ledger=DeliveryLedger(redis),
                        pace=None, retry_s=(1,), jitter=lambda: 0.0, order=EventOrder(redis))


def test_incident_events_reach_a_sink_in_order(redis: redis_lib.Redis, three_events: Events) -> None:
    """``resolved`` and ``updated`` wait until the event before them reached the sink; each
    goes once."""
    sink = EventSink()
    assert isinstance(deliver(redis, sink, three_events.resolved), Again)
    assert isinstance(deliver(redis, sink, three_events.updated), Again)
    assert deliver(redis, sink, three_events.opened) == Done(DeliveryOutcome.DELIVERED)
    assert isinstance(deliver(redis, sink, three_events.resolved), Again)
    assert deliver(redis, sink, three_events.updated) == Done(DeliveryOutcome.DELIVERED)
    assert deliver(redis, sink, three_events.resolved) == Done(DeliveryOutcome.DELIVERED)
    assert deliver(redis, sink, three_events.updated) == Done(DeliveryOutcome.DUPLICATE)
    assert [w.rsplit(":", 1)[1] for w in sink.sent] == ["1", "2", "3"]


def test_an_event_refused_for_good_does_not_hold_back_the_next(redis: redis_lib.Redis,
                                                               three_events: Events) -> None:
    """A refused ``updated`` is given up; ``resolved`` then goes."""
    sink = EventSink(refuse={2})
    deliver(redis, sink, three_events.opened)
    assert isinstance(deliver(redis, sink, three_events.updated), Failed)
    assert deliver(redis, sink, three_events.resolved) == Done(DeliveryOutcome.DELIVERED)


def test_concurrent_timer_runs_emit_one_event(redis: redis_lib.Redis,
                                              connections: list[redis_lib.Redis]) -> None:
    """Eight timer runs at once (a duplicated or re-run check): one ``updated``, then one
    ``resolved``, each with its own sequence number."""
    clock = Clock()
    desk = desk_for(redis, clock)
    for n in (1, 2, 3):
        desk.deliveries(alert_n(n), alert_n(n).to_envelope())
    incident_id = desk.checks[0][0]
    clock.now = T0 + 40
    desk.deliveries(alert_n(4), alert_n(4).to_envelope())

    def all_at(now: float) -> list[str]:
        barrier = threading.Barrier(len(connections))

        def one(client: redis_lib.Redis) -> str:
            barrier.wait()
            return check_step(incident_id, store=IncidentStore(client), now=now).event

        with ThreadPoolExecutor(len(connections)) as pool:
            return list(pool.map(one, connections))

    assert sorted(all_at(T0 + 45)) == ["none"] * 7 + ["updated"]
    assert sorted(all_at(T0 + 200)) == ["none"] * 7 + ["resolved"]
    snapshot = IncidentStore(redis).read(incident_id)
    assert snapshot is not None and snapshot.number("seq") == 3
