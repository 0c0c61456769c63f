"""PagerDuty pages group by ``grp_…`` and resolve once quiet: the PagerDuty stand-in, real Redis.

Alerts go through the incident desk (routing's group), the delivery step (the ledger)
and the PagerDuty sink; the quiet-time sweep runs with a fake clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis as redis_lib
import requests

from devtools.pagerduty_standin import PagerDutyStandIn
from devtools.redis_server import RedisServer
from devtools.sample_alerts import sample_alert
from service.analysis.alert import Alert
from service.decisions import Done
from service.delivery.incidents.desk import IncidentDesk
from service.delivery.incidents.pager_groups import (
    PagerGroup,
    PagerGroups,
    pager_dedup_key,
    resolve_quiet,
)
from service.delivery.incidents.policy import StormPolicy
from service.delivery.incidents.store import IncidentStore
from service.delivery.ledger import DeliveryLedger
from service.delivery.routing import RouteMatch
from service.delivery.sinks.pagerduty import PagerDutySink
from service.delivery.step import DeliveryRequest, deliver_step
from service.http_session import http_session
from workers.digest_clock import DigestClock

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"
T0 = 1_800_000_000.0
QUIET_S = 600
#: No storm opens in these tests: every alert is sent one by one.
STORM = StormPolicy(calls=1000, resolve_after_s=QUIET_S)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with http_session({}) as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink(pagerduty: PagerDutyStandIn, session: requests.Session, redis: redis_lib.Redis,
         clock: FakeClock) -> PagerDutySink:
    return PagerDutySink(ROUTING_KEY, name="oncall", url=pagerduty.url, session=session,
                         clock=lambda: datetime.fromtimestamp(clock.now, UTC),
                         groups=PagerGroups(redis))


def _call_alert(n: int, issue: str = "sdk_edge/connection/error/31005") -> Alert:
    base = sample_alert(issues=1, call_sid=f"CA{n:032x}")
    return replace(base, issues=(replace(base.issues[0], key=issue),), summary="")


def _page(redis: redis_lib.Redis, sink: PagerDutySink, clock: FakeClock, alert: Alert,
          route: str = "errors") -> None:
    """Route the alert through the desk and deliver what it gives the pager sink."""
    match = RouteMatch(route, ("oncall",), STORM)
    desk = IncidentDesk(IncidentStore(redis), lambda _: [match], lambda _: "pager", clock=clock)
    [delivery] = desk.deliveries(alert, alert.to_envelope())
    decision = deliver_step(DeliveryRequest(delivery.sink, delivery.message), sink=sink,
                            ledger=DeliveryLedger(redis), pace=None, retry_s=(1,))
    assert isinstance(decision, Done)


def _actions(pagerduty: PagerDutyStandIn) -> list[tuple[str | None, str | None]]:
    return [(e.action, e.dedup_key) for e in pagerduty.accepted()]


def test_two_alerts_of_one_group_are_one_pagerduty_incident(
        pagerduty: PagerDutyStandIn, redis: redis_lib.Redis, sink: PagerDutySink,
        clock: FakeClock) -> None:
    """Two calls with the same problem trigger one ``grp_…`` key (the route and the issue);
    another problem, or the same one on another route, has a key of its own."""
    _page(redis, sink, clock, _call_alert(1))
    clock.now += 30
    _page(redis, sink, clock, _call_alert(2))
    _page(redis, sink, clock, _call_alert(3, "sdk_edge/connection/error/31009"))
    _page(redis, sink, clock, _call_alert(4), route="other")
    key = pager_dedup_key("errors", {"issue": "sdk_edge/connection/error/31005"})
    assert key.startswith("grp_") and len(key) <= 255
    triggers = pagerduty.triggers()
    assert triggers[key] == 2 and len(triggers) == 3
    assert all(k.startswith("grp_") for k in triggers)


def test_a_quiet_group_is_resolved_once(pagerduty: PagerDutyStandIn, redis: redis_lib.Redis,
                                        sink: PagerDutySink, clock: FakeClock) -> None:
    """No resolve before the group's quiet time; then exactly one, however many workers
    sweep; a group with a newer alert waits for its own quiet time."""
    _page(redis, sink, clock, _call_alert(1))
    clock.now += 300
    _page(redis, sink, clock, _call_alert(2, "sdk_edge/connection/error/31009"))
    groups, sinks = PagerGroups(redis), {"oncall": sink}.get
    assert resolve_quiet(groups, sinks, T0 + QUIET_S - 1) == 0
    assert resolve_quiet(groups, sinks, T0 + QUIET_S + 1) == 1
    assert resolve_quiet(PagerGroups(redis), sinks, T0 + QUIET_S + 2) == 0  # a second worker
    first = pager_dedup_key("errors", {"issue": "sdk_edge/connection/error/31005"})
    second = pager_dedup_key("errors", {"issue": "sdk_edge/connection/error/31009"})
    assert [a for a in _actions(pagerduty) if a[0] == "resolve"] == [("resolve", first)]
    assert resolve_quiet(groups, sinks, T0 + 300 + QUIET_S + 1) == 1
    assert [a for a in _actions(pagerduty) if a[0] == "resolve"] == [("resolve", first),
                                                                       ("resolve", second)]
    assert groups.open() == {}


def test_a_new_alert_keeps_the_group_open(pagerduty: PagerDutyStandIn, redis: redis_lib.Redis,
                                          sink: PagerDutySink, clock: FakeClock) -> None:
    """Each alert of the group starts its quiet time again: the resolve waits for the last one."""
    _page(redis, sink, clock, _call_alert(1))
    clock.now += 500
    _page(redis, sink, clock, _call_alert(2))
    groups, sinks = PagerGroups(redis), {"oncall": sink}.get
    assert resolve_quiet(groups, sinks, T0 + QUIET_S + 1) == 0
    assert resolve_quiet(groups, sinks, T0 + 500 + QUIET_S + 1) == 1


def test_an_alert_after_the_resolve_opens_a_fresh_trigger(
        pagerduty: PagerDutyStandIn, redis: redis_lib.Redis, sink: PagerDutySink,
        clock: FakeClock) -> None:
    """After the resolve, the problem's next call triggers the key again (a new PagerDuty
    incident), and that one resolves in turn after its quiet time."""
    _page(redis, sink, clock, _call_alert(1))
    groups, sinks = PagerGroups(redis), {"oncall": sink}.get
    assert resolve_quiet(groups, sinks, T0 + QUIET_S + 1) == 1
    clock.now = T0 + 2 * QUIET_S
    _page(redis, sink, clock, _call_alert(2))
    assert resolve_quiet(groups, sinks, clock.now + QUIET_S + 1) == 1
    key = pager_dedup_key("errors", {"issue": "sdk_edge/connection/error/31005"})
    assert _actions(pagerduty) == [("trigger", key), ("resolve", key), ("trigger", key),
                                   ("resolve", key)]


def test_a_failed_resolve_is_tried_again_after_its_lease(
        pagerduty: PagerDutyStandIn, redis: redis_lib.Redis, sink: PagerDutySink,
        clock: FakeClock) -> None:
    """PagerDuty answering 500 to the resolve: the group stays claimed for the lease, then
    the next sweep resolves it; PagerDuty takes one resolve."""
    _page(redis, sink, clock, _call_alert(1))
    pagerduty.script([(500, '{"status":"error"}')])
    groups, sinks = PagerGroups(redis), {"oncall": sink}.get
    due = T0 + QUIET_S + 1
    assert resolve_quiet(groups, sinks, due) == 0
    assert resolve_quiet(groups, sinks, due + 1) == 0  # claimed: not tried again at once
    assert resolve_quiet(groups, sinks, due + 61) == 1
    assert [a for a, _ in _actions(pagerduty)] == ["trigger", "resolve"]


def test_the_worker_clock_tick_resolves_quiet_groups(
        pagerduty: PagerDutyStandIn, redis: redis_lib.Redis, sink: PagerDutySink,
        clock: FakeClock) -> None:
    """The workers' clock tick (the digest clock) sends the resolve of a quiet group."""
    _page(redis, sink, clock, _call_alert(1))
    tick = DigestClock(redis, [], pagers={"oncall": sink},
                       clock=lambda: datetime.fromtimestamp(T0 + QUIET_S + 5, UTC))
    tick.tick()
    assert [a for a, _ in _actions(pagerduty)] == ["trigger", "resolve"]


def test_an_alert_without_a_route_group_keeps_its_own_key(
        pagerduty: PagerDutyStandIn, redis: redis_lib.Redis, sink: PagerDutySink) -> None:
    """An alert delivered without a pager group (sent before an upgrade) triggers on its id."""
    alert = _call_alert(1)
    decision = deliver_step(DeliveryRequest("oncall", alert.to_envelope()), sink=sink,
                            ledger=DeliveryLedger(redis), pace=None, retry_s=(1,))
    assert isinstance(decision, Done)
    assert pagerduty.triggers() == {alert.alert_id: 1}


def test_workers_sweeping_at_once_send_one_resolve(
        pagerduty: PagerDutyStandIn, redis: redis_lib.Redis, redis_server: RedisServer,
        sink: PagerDutySink, clock: FakeClock) -> None:
    """Eight sweeps at the same moment, each with its own Redis connection: one resolve."""
    _page(redis, sink, clock, _call_alert(1))
    start = threading.Barrier(8)

    def sweep(_: int) -> int:
        with redis_lib.Redis.from_url(redis_server.url) as own:
            start.wait(timeout=10)
            return resolve_quiet(PagerGroups(own), {"oncall": sink}.get, T0 + QUIET_S + 1)

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(sweep, range(8))) == 1
    assert [a for a, _ in _actions(pagerduty)] == ["trigger", "resolve"]


def test_an_alert_during_the_resolve_keeps_the_group(redis: redis_lib.Redis) -> None:
    """A group touched by a new alert between its claim and its resolve stays open, to be
    resolved after the new alert's quiet time."""
    groups = PagerGroups(redis)
    group = PagerGroup("grp_" + "a" * 32, "errors", QUIET_S)
    groups.touch("oncall", group, T0)
    [(sink, key, claimed, due)] = groups.claim_due(T0 + QUIET_S + 1)
    assert due == T0 + QUIET_S
    groups.touch("oncall", group, T0 + QUIET_S + 2)
    assert groups.settle(sink, key, claimed) is False
    assert groups.open() == {("oncall", group.dedup_key): T0 + 2 * QUIET_S + 2}


def test_a_trigger_delivered_after_the_quiet_time_is_followed_by_a_resolve(
        pagerduty: PagerDutyStandIn, redis: redis_lib.Redis, sink: PagerDutySink,
        clock: FakeClock) -> None:
    """A grouped trigger held up past its group's quiet time (retries, pacing) restarts
    the quiet time when PagerDuty gets it: the last event PagerDuty sees is a resolve."""
    alert = _call_alert(1)
    match = RouteMatch("errors", ("oncall",), STORM)
    desk = IncidentDesk(IncidentStore(redis), lambda _: [match], lambda _: "pager", clock=clock)
    [delivery] = desk.deliveries(alert, alert.to_envelope())  # the group is touched here
    groups, sinks = PagerGroups(redis), {"oncall": sink}.get
    clock.now = T0 + QUIET_S + 1
    assert resolve_quiet(groups, sinks, clock.now) == 1  # resolved before the trigger went
    clock.now += 5
    decision = deliver_step(DeliveryRequest(delivery.sink, delivery.message), sink=sink,
                            ledger=DeliveryLedger(redis), pace=None, retry_s=(1,))
    assert isinstance(decision, Done)
    key = pager_dedup_key("errors", {"issue": "sdk_edge/connection/error/31005"})
    assert _actions(pagerduty) == [("resolve", key), ("trigger", key)]
    assert resolve_quiet(groups, sinks, clock.now + QUIET_S - 1) == 0
    assert resolve_quiet(groups, sinks, clock.now + QUIET_S + 1) == 1
    assert _actions(pagerduty)[-1] == ("resolve", key)
    assert groups.open() == {}


def test_a_group_of_an_unknown_sink_waits_for_a_worker_that_knows_it(
        pagerduty: PagerDutyStandIn, redis: redis_lib.Redis, sink: PagerDutySink,
        clock: FakeClock) -> None:
    """A worker that does not know the pager sink leaves its quiet group to one that does
    (which resolves it), and drops it only after an hour past its quiet time."""
    _page(redis, sink, clock, _call_alert(1))
    _page(redis, sink, clock, _call_alert(2, "sdk_edge/connection/error/31009"))
    groups = PagerGroups(redis)
    first = pager_dedup_key("errors", {"issue": "sdk_edge/connection/error/31005"})
    second = pager_dedup_key("errors", {"issue": "sdk_edge/connection/error/31009"})
    unknown: dict[str, PagerDutySink] = {}
    assert resolve_quiet(groups, unknown.get, T0 + QUIET_S + 1) == 0
    assert set(groups.open()) == {("oncall", first), ("oncall", second)}
    assert resolve_quiet(groups, {"oncall": sink}.get, T0 + QUIET_S + 2) == 2  # at once
    assert sorted(a for a in _actions(pagerduty) if a[0] == "resolve") == sorted(
        [("resolve", first), ("resolve", second)])
    _page(redis, sink, clock, _call_alert(3))
    assert resolve_quiet(groups, unknown.get, T0 + QUIET_S + 3600) == 0
    assert ("oncall", first) in groups.open()
    assert resolve_quiet(groups, unknown.get, T0 + QUIET_S + 3602) == 0
    assert groups.open() == {}
