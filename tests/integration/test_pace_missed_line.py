"""Paced sends that missed their turn get the next one, in order, ahead of later bookings
(real Redis): no send is re-paced again and again while later ones go first."""

from __future__ import annotations

import time
from collections import Counter

import redis as redis_lib

from devtools.sample_alerts import sample_alert
from service.decisions import Again
from service.delivery.ledger import DeliveryLedger
from service.delivery.pace import MISSED_GRACE_S, Pace
from tests.integration.test_delivery import FakeClock, RecordingSink, deliver


def test_missed_sends_take_the_next_turns_in_the_order_they_missed(
        redis: redis_lib.Redis) -> None:
    """Sends that missed their turn line up in the order they missed; the next of the line,
    waiting in place, gets the next free turn whoever else asks, and later ones queue
    behind it."""
    clock = FakeClock()
    pace = Pace(redis, interval_s=1.0, clock=clock)
    start = clock.now
    assert pace.take_turn("slack", "a") == (0.0, 0)
    clock.now = start + 0.2
    assert pace.take_turn("slack", "b", waits_up_to=2.0)[1] == 0  # missed: next, waits here
    clock.now = start + 0.3
    assert pace.take_turn("slack", "c", waits_up_to=2.0)[1] == 1
    clock.now = start + 1.0  # the turn is free: it belongs to b, who waits for it
    assert pace.take_turn("slack", "later", waits_up_to=2.0)[1] == 2
    assert pace.take_turn("slack", "c", waits_up_to=2.0) != (0.0, 0)
    assert pace.take_turn("slack", "b", waits_up_to=2.0) == (0.0, 0)
    clock.now = start + 1.5
    assert pace.take_turn("slack", "c", waits_up_to=2.0)[1] == 0  # now next, waits here
    clock.now = start + 2.0
    assert pace.take_turn("slack", "later", waits_up_to=2.0) != (0.0, 0)
    assert pace.take_turn("slack", "c", waits_up_to=2.0) == (0.0, 0)
    clock.now = start + 3.0
    assert pace.take_turn("slack", "later", waits_up_to=2.0) == (0.0, 0)


def test_a_turn_the_next_in_line_is_not_waiting_for_is_not_wasted(
        redis: redis_lib.Redis) -> None:
    """When the next of the line is coming back through the scheduler rather than waiting,
    a free turn goes to another member of the line who asks, never to a send outside the
    line; the next of the line keeps its place."""
    clock = FakeClock()
    pace = Pace(redis, interval_s=1.0, clock=clock)
    assert pace.take_turn("slack", "a") == (0.0, 0)
    assert pace.take_turn("slack", "b")[1] == 0  # told to come back, not waiting here
    assert pace.take_turn("slack", "c")[1] == 1
    clock.now += 1.0
    assert pace.take_turn("slack", "fresh")[1] == 2  # a later send lines up behind
    assert pace.take_turn("slack", "c") == (0.0, 0)
    assert pace.take_turn("slack", "b", waits_up_to=2.0) == (1.0, 0)  # still next


def test_a_missed_send_that_never_comes_back_leaves_the_line(redis: redis_lib.Redis) -> None:
    """A member of the line whose worker died (it does not come back within the grace after
    its wait) is dropped, so the line never stalls behind it."""
    clock = FakeClock()
    pace = Pace(redis, interval_s=1.0, clock=clock)
    assert pace.take_turn("slack", "a") == (0.0, 0)
    assert pace.take_turn("slack", "dead")[1] == 0
    assert pace.take_turn("slack", "b")[1] == 1
    clock.now += 1.0 + MISSED_GRACE_S + 0.5
    assert pace.take_turn("slack", "b") == (0.0, 0)


def test_a_stalled_scheduler_does_not_starve_a_booked_send(redis: redis_lib.Redis) -> None:
    """The storm drill's case: paced sends bunch after the scheduler stalls while new ones
    keep coming; every send goes out within a few rounds, none re-paced again and again."""
    clock = FakeClock(1_800_000_000.0)

    def sleep(seconds: float) -> None:
        clock.now += seconds

    pace = Pace(redis, interval_s=1.05, clock=clock, sleep=sleep)
    sink, ledger = RecordingSink("slack"), DeliveryLedger(redis)
    arrivals = {tick: sample_alert(issues=tick + 1) for tick in range(24)}
    pending: list[tuple[float, object, bool]] = []
    repaced: Counter[str] = Counter()
    for tick in range(90):
        clock.now = float(1_800_000_000 + tick)
        if tick in arrivals:
            pending.append((clock.now, arrivals[tick], False))
        if 6 <= tick < 14:  # RQ's scheduler stalled: nothing scheduled runs
            continue
        due = [p for p in pending if p[0] <= clock.now]
        pending = [p for p in pending if p[0] > clock.now]
        for _, alert, booked in due:
            decision = deliver(alert, sink, ledger=ledger, pace=pace, booked=booked)  # type: ignore[arg-type]
            if isinstance(decision, Again):
                repaced[alert.alert_id] += 1  # type: ignore[attr-defined]
                back = float(int(clock.now + decision.after_s + 0.999))  # whole-second ticks
                pending.append((back, alert, bool(decision.state["booked"])))
    assert sorted(sink.sent) == sorted(a.alert_id for a in arrivals.values())
    assert max(repaced.values()) <= 3, repaced


def test_a_waiter_killed_in_its_sleep_frees_the_line_a_second_after_its_turn(
        redis: redis_lib.Redis) -> None:
    """The next of the line, waiting in place, holds the turn only while it waits: if its
    worker dies in that sleep, the turn goes to others a second after it, not a whole
    grace period later (the storm drill's 11 s without a Slack message after a kill).
    Real time: the marks expire in Redis."""
    pace = Pace(redis, interval_s=1.0)
    assert pace.take_turn("slack", "a") == (0.0, 0)
    wait, place = pace.take_turn("slack", "killed", waits_up_to=2.0)  # waits here, then dies
    assert place == 0 and 0 < wait <= 1.0
    time.sleep(wait + 1.2)
    assert pace.take_turn("slack", "other", waits_up_to=2.0) == (0.0, 0)
