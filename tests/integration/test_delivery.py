"""Delivery bookkeeping against real Redis: once per sink and alert, leases, the shared pace."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib
from structlog.testing import capture_logs

from devtools.redis_server import RedisServer
from devtools.sample_alerts import WEBHOOK_SECRET, sample_alert
from devtools.standins import WebhookReceiver
from service import keys
from service.analysis.alert import Alert
from service.decisions import Again, Decision, DeliveryOutcome, Done, Failed
from service.delivery.ledger import DeliveryLedger
from service.delivery.pace import Pace
from service.delivery.sinks import AlertSink, WebhookSink
from service.delivery.step import DeliveryRequest, deliver_step
from service.errors import DeliveryRejected, DeliveryRetryable
from service.http_session import http_session


class RecordingSink:
    """A sink of our own (the AlertSink protocol) that records sends and can fail on cue."""

    pace_s: float | None = None
    kind = "webhook"

    def __init__(self, name: str = "webhook-0badcafe",
                 failures: list[Exception] | None = None,
                 during_send: Callable[[], None] | None = None) -> None:
        self.name = name
        self.sent: list[str] = []
        self._failures = list(failures or [])
        self._during_send = during_send
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        if self._during_send is not None:
            self._during_send()
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
            self.sent.append(alert.alert_id)


class FakeClock:
    """Seconds since the epoch that only move when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def deliver(alert: Alert, sink: AlertSink, *, ledger: DeliveryLedger, pace: Pace | None,
            booked: bool = False) -> Decision:
    """One run of the delivery step, as a delivery job runs it."""
    request = DeliveryRequest(sink.name, alert.to_envelope(), booked=booked)
    return deliver_step(request, sink=sink, ledger=ledger, pace=pace, retry_s=(5, 30),
                        jitter=lambda: 0.0)


DELIVERED, DUPLICATE = Done(DeliveryOutcome.DELIVERED), Done(DeliveryOutcome.DUPLICATE)


def _client(redis_server: RedisServer) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(redis_server.url)


@pytest.fixture
def other_redis(redis_server: RedisServer, redis: redis_lib.Redis) -> Iterator[redis_lib.Redis]:
    """A second connection to the same database, as another process would hold."""
    client = _client(redis_server)
    yield client
    client.close()


def test_ledger_prevents_a_second_send(redis: redis_lib.Redis) -> None:
    """The same alert through the same sink is sent once; the second call is a duplicate."""
    sink, alert = RecordingSink(), sample_alert()
    ledger = DeliveryLedger(redis)
    assert deliver(alert, sink, ledger=ledger, pace=None) == DELIVERED
    assert deliver(alert, sink, ledger=DeliveryLedger(redis), pace=None) == DUPLICATE
    assert sink.sent == [alert.alert_id]
    assert ledger.is_delivered(sink.name, alert.alert_id)


def test_ledger_is_per_sink(redis: redis_lib.Redis) -> None:
    """Delivery to one sink does not count as delivery to another."""
    alert, ledger = sample_alert(), DeliveryLedger(redis)
    first, second = RecordingSink("webhook-aaaaaaaa"), RecordingSink("webhook-bbbbbbbb")
    deliver(alert, first, ledger=ledger, pace=None)
    assert deliver(alert, second, ledger=ledger, pace=None) == DELIVERED
    assert second.sent == [alert.alert_id]


def test_delivered_marks_expire_after_the_ttl(redis: redis_lib.Redis) -> None:
    """Ledger keys carry the configured TTL (7 days by default), so Redis does not fill up."""
    alert = sample_alert()
    deliver(alert, RecordingSink(), ledger=DeliveryLedger(redis), pace=None)
    key = DeliveryLedger.delivered_key("webhook-0badcafe", alert.alert_id)
    assert 6 * 86400 < redis.ttl(key) <= 7 * 86400
    DeliveryLedger(redis, ttl_s=60).mark_delivered("slack", alert.alert_id)
    assert 0 < redis.ttl(DeliveryLedger.delivered_key("slack", alert.alert_id)) <= 60


def test_concurrent_deliveries_send_once(redis_server: RedisServer,
                                         redis: redis_lib.Redis) -> None:
    """Eight workers with their own connections deliver the same alert: one send in all."""
    workers = 8
    finished = 0
    others_done = threading.Event()
    lock = threading.Lock()
    # The sender holds its send open until every other worker has given up, so the
    # race is real whichever thread wins the lease.
    def hold_until_others_gave_up() -> None:
        others_done.wait(10)

    sink = RecordingSink(during_send=hold_until_others_gave_up)
    alert = sample_alert()

    def attempt(_: int) -> str:
        nonlocal finished
        client = _client(redis_server)
        try:
            decision = deliver(alert, sink, ledger=DeliveryLedger(client), pace=None)
            if isinstance(decision, Again):
                assert decision.outcome == DeliveryOutcome.PACED and decision.after_s > 0
                return "in_flight"
            return str(decision.outcome)
        finally:
            with lock:
                finished += 1
                if finished == workers - 1:
                    others_done.set()
            client.close()

    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(attempt, range(workers)))
    assert sorted(outcomes) == ["delivered"] + ["in_flight"] * (workers - 1)
    assert sink.sent == [alert.alert_id]
    assert deliver(alert, sink, ledger=DeliveryLedger(redis), pace=None) == DUPLICATE


def test_concurrent_webhook_deliveries_reach_the_receiver_once(
        redis_server: RedisServer, webhook_receiver: WebhookReceiver) -> None:
    """Over real HTTP, many workers delivering one alert produce one request."""
    alert = sample_alert()

    def attempt(_: int) -> str:
        client = _client(redis_server)
        try:
            with http_session({}) as session:
                sink = WebhookSink(webhook_receiver.url, WEBHOOK_SECRET, session=session)
                decision = deliver(alert, sink, ledger=DeliveryLedger(client), pace=None)
                return "in_flight" if isinstance(decision, Again) else str(decision.outcome)
        finally:
            client.close()

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert outcomes.count("delivered") == 1
    assert len(webhook_receiver.deliveries) == 1
    assert webhook_receiver.unique_ids() == {alert.alert_id}


def test_lease_released_after_a_retryable_failure(redis: redis_lib.Redis) -> None:
    """A failed attempt frees the lease at once, so the retry sends."""
    failure = DeliveryRetryable("503", status=503)
    sink, alert = RecordingSink(failures=[failure]), sample_alert()
    ledger = DeliveryLedger(redis)
    assert deliver(alert, sink, ledger=ledger, pace=None) == Again(
        DeliveryOutcome.RETRY, 5, {"attempt": 1, "booked": False})
    assert not redis.exists(DeliveryLedger.lease_key(sink.name, alert.alert_id))
    assert deliver(alert, sink, ledger=DeliveryLedger(redis), pace=None) == DELIVERED
    assert sink.sent == [alert.alert_id]


def test_a_refusal_fails_the_delivery_for_good(redis: redis_lib.Redis) -> None:
    """A receiver's permanent refusal is Failed with its reason, and frees the lease."""
    failure = DeliveryRejected("gone", reason="endpoint_gone", status=410)
    sink, alert = RecordingSink(failures=[failure]), sample_alert()
    ledger = DeliveryLedger(redis)
    assert deliver(alert, sink, ledger=ledger, pace=None) == Failed(
        DeliveryOutcome.REJECTED, "endpoint_gone", "gone")
    assert not redis.exists(DeliveryLedger.lease_key(sink.name, alert.alert_id))
    assert not ledger.is_delivered(sink.name, alert.alert_id)


def test_retries_end_when_the_waits_are_used_up(redis: redis_lib.Redis) -> None:
    """After the last wait of DELIVERY_RETRY_SECONDS a failing receiver fails the delivery."""
    sink, alert = RecordingSink(failures=[DeliveryRetryable("503", status=503)]), sample_alert()
    request = DeliveryRequest(sink.name, alert.to_envelope(), attempt=2)
    decision = deliver_step(request, sink=sink, ledger=DeliveryLedger(redis), pace=None,
                            retry_s=(5, 30))
    assert isinstance(decision, Failed) and decision.reason == "retries_exhausted"


def test_lease_released_after_an_unexpected_error(redis: redis_lib.Redis) -> None:
    """A bug in a sink propagates, frees the lease and marks nothing delivered."""
    failure = RuntimeError("a bug in a sink")
    sink, alert = RecordingSink(failures=[failure]), sample_alert()
    ledger = DeliveryLedger(redis)
    with pytest.raises(RuntimeError):
        deliver(alert, sink, ledger=ledger, pace=None)
    assert not redis.exists(DeliveryLedger.lease_key(sink.name, alert.alert_id))
    assert not ledger.is_delivered(sink.name, alert.alert_id)


def test_a_lease_held_elsewhere_is_not_released_by_others(redis: redis_lib.Redis,
                                                          other_redis: redis_lib.Redis) -> None:
    """Only the holder's release drops a lease; another process's release leaves it."""
    holder, other = DeliveryLedger(redis), DeliveryLedger(other_redis)
    assert holder.take("slack", "alr_x", lease_s=30) == 0.0
    assert other.take("slack", "alr_x", lease_s=30) > 0
    other.release("slack", "alr_x")
    assert 0 < other.take("slack", "alr_x", lease_s=30) <= 30
    holder.release("slack", "alr_x")
    assert other.take("slack", "alr_x", lease_s=30) == 0.0


def test_a_lease_of_a_dead_worker_is_taken_over_at_once(redis: redis_lib.Redis,
                                                        other_redis: redis_lib.Redis) -> None:
    """A killed worker's lease would hold its recovered delivery for the lease's 30 s: once
    the holder is found killed (``keys.worker_dead``) the lease is taken over. A live
    holder's lease (even one whose alive key expired: silent, maybe only cut off), and one
    with no worker behind it (the CLI), are waited out; a ``/`` in a worker's name does not
    confuse whose lease it is."""
    dying, recovering = (DeliveryLedger(redis, holder="team/worker-1"),
                         DeliveryLedger(other_redis, holder="worker-2"))
    assert dying.take("slack", "alr_x", lease_s=30) == 0.0
    assert 29 < recovering.take("slack", "alr_x", lease_s=30) <= 30  # not known dead
    redis.set(keys.worker_dead("team"), "1", ex=60)  # another worker: not this lease's
    assert recovering.take("slack", "alr_x", lease_s=30) > 0
    redis.set(keys.worker_dead("team/worker-1"), "1", ex=60)  # found killed (death_watch)
    assert recovering.take("slack", "alr_x", lease_s=30) == 0.0
    assert dying.take("slack", "alr_x", lease_s=30) > 0  # the lease is the survivor's now
    redis.set(keys.worker_dead("worker-2"), "1", ex=60)  # killed too: its lease goes the same way
    assert dying.take("slack", "alr_x", lease_s=30) == 0.0

    assert DeliveryLedger(redis).take("slack", "alr_cli", lease_s=30) == 0.0
    assert recovering.take("slack", "alr_cli", lease_s=30) > 0  # no worker named: waited out


def test_pace_across_two_clients_allows_one_per_interval(redis: redis_lib.Redis,
                                                         other_redis: redis_lib.Redis) -> None:
    """Two processes share one pace: a second send within the interval must wait the rest."""
    clock = FakeClock()
    first = Pace(redis, interval_s=1.0, clock=clock)
    second = Pace(other_redis, interval_s=1.0, clock=clock)
    assert first.reserve("slack") == 0.0
    clock.now += 0.25
    assert second.reserve("slack") == pytest.approx(0.75)
    assert first.reserve("slack") == pytest.approx(0.75)
    clock.now += 0.75
    assert second.reserve("slack") == 0.0
    clock.now += 0.5
    assert first.reserve("slack") == pytest.approx(0.5)
    assert first.reserve("other-key") == 0.0


def test_pace_never_lets_two_sends_in_one_interval(redis_server: RedisServer,
                                                   redis: redis_lib.Redis) -> None:
    """Sixteen concurrent reservations at one instant: exactly one gets to send."""
    clock = FakeClock()

    def reserve(_: int) -> float:
        client = _client(redis_server)
        try:
            return Pace(client, interval_s=1.0, clock=clock).reserve("slack")
        finally:
            client.close()

    with ThreadPoolExecutor(16) as pool:
        waits = list(pool.map(reserve, range(16)))
    assert waits.count(0.0) == 1
    assert all(w == pytest.approx(1.0) for w in waits if w)


def test_paced_delivery_sends_nothing_and_frees_the_lease(redis: redis_lib.Redis) -> None:
    """When the pace says wait, the step asks to run again no later than its slot (within
    the scheduler's second before it) and sends then."""
    clock = FakeClock()
    pace = Pace(redis, interval_s=1.0, clock=clock)
    sink = RecordingSink("slack")
    first, second = sample_alert(), sample_alert(issues=3)
    ledger = DeliveryLedger(redis)
    assert deliver(first, sink, ledger=ledger, pace=pace) == DELIVERED
    clock.now += 0.4
    decision = deliver(second, sink, ledger=ledger, pace=pace)
    assert isinstance(decision, Again) and decision.outcome == DeliveryOutcome.PACED
    assert 0 < decision.after_s <= 0.6
    assert sink.sent == [first.alert_id]
    assert decision.state["booked"]
    assert not redis.exists(DeliveryLedger.lease_key(sink.name, second.alert_id))
    clock.now += 0.6
    assert deliver(second, sink, ledger=ledger, pace=pace, booked=True) == DELIVERED
    assert sink.sent == [first.alert_id, second.alert_id]


def test_a_burst_books_one_slot_each(redis: redis_lib.Redis) -> None:
    """Five alerts paced at once get slots 0, 1, 2, 3, 4 s away: each waits once, in order."""
    clock = FakeClock()
    pace = Pace(redis, interval_s=1.0, clock=clock)
    assert [pace.book("slack") for _ in range(5)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    clock.now += 10
    assert pace.book("slack") == 0.0


def test_a_paced_send_never_waits_in_the_worker(redis: redis_lib.Redis) -> None:
    """A send one second away is not slept: the step returns at once, asking to come back."""
    clock = FakeClock()
    pace = Pace(redis, interval_s=1.0, clock=clock)
    sink, ledger = RecordingSink("slack"), DeliveryLedger(redis)
    first, second = sample_alert(), sample_alert(issues=3)
    assert deliver(first, sink, ledger=ledger, pace=pace) == DELIVERED
    decision = deliver(second, sink, ledger=ledger, pace=pace)
    assert isinstance(decision, Again) and decision.outcome == DeliveryOutcome.PACED
    assert 0 < decision.after_s <= 1.0 and decision.state == {"attempt": 0, "booked": True}
    clock.now += 1.0
    assert deliver(second, sink, ledger=ledger, pace=pace, booked=True) == DELIVERED
    assert sink.sent == [first.alert_id, second.alert_id]


def test_duplicate_takes_no_pace_slot(redis: redis_lib.Redis) -> None:
    """An alert already delivered is a duplicate without using up the sink's pace."""
    clock = FakeClock()
    pace = Pace(redis, interval_s=1.0, clock=clock)
    sink, alert = RecordingSink("slack"), sample_alert()
    ledger = DeliveryLedger(redis)
    ledger.mark_delivered("slack", alert.alert_id)
    assert deliver(alert, sink, ledger=ledger, pace=pace) == DUPLICATE
    assert pace.reserve("slack") == 0.0


def test_delivery_logs_outcomes_without_secrets(redis: redis_lib.Redis) -> None:
    """alert_delivered and alert_delivery_rejected carry the ids and the receiver's reason."""
    alert = sample_alert()
    rejected = DeliveryRejected("Slack refused", reason="channel_is_archived", status=410)
    with capture_logs() as logs:
        deliver(alert, RecordingSink(), ledger=DeliveryLedger(redis), pace=None)
        deliver(alert, RecordingSink("slack", failures=[rejected]),
                ledger=DeliveryLedger(redis), pace=None)
    delivered = [e for e in logs if e["event"] == "alert_delivered"]
    assert delivered == [{"event": "alert_delivered", "log_level": "info",
                          "sink": "webhook-0badcafe", "alert_id": alert.alert_id,
                          "call_sid": alert.call.call_sid}]
    [refused] = [e for e in logs if e["event"] == "alert_delivery_rejected"]
    assert refused["reason"] == "channel_is_archived" and refused["sink"] == "slack"
    assert str(alert.call.to) not in str(logs)


def test_a_receivers_retry_after_pauses_every_booked_alert(redis: redis_lib.Redis) -> None:
    """Slack's 429 with Retry-After 30 holds back alerts already booked, not just the refused one."""
    clock = FakeClock()
    pace = Pace(redis, interval_s=1.0, clock=clock)
    ledger = DeliveryLedger(redis)
    refused = RecordingSink("slack", failures=[DeliveryRetryable("429", retry_after=30.0, status=429)])
    first, second = sample_alert(), sample_alert(issues=3)
    assert pace.book("slack") == 0.0  # an earlier alert holds the slot at 0 s
    decision = deliver(first, refused, ledger=ledger, pace=pace, booked=True)
    assert decision == Again(DeliveryOutcome.RETRY, 30.0, {"attempt": 1, "booked": True})
    clock.now += 1.0  # the second alert's slot, booked before the 429
    decision = deliver(second, RecordingSink("slack"), ledger=ledger, pace=pace, booked=True)
    # back within the second before the window ends, to wait its last fraction in place
    assert isinstance(decision, Again) and decision.after_s >= 28.0
    assert pace.book("slack") >= 29.0


def test_a_turn_less_than_a_tick_away_is_waited_in_place(redis: redis_lib.Redis) -> None:
    """A paced send whose turn is close (under INLINE_WAIT_S, or next in the line of missed
    sends) waits for it in place, at most one turn at a time, and sends, instead of losing
    a whole scheduler tick (which halved Slack's rate to one message every 2 s)."""
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    pace = Pace(redis, interval_s=1.05, clock=clock, sleep=sleep)
    sink, ledger = RecordingSink("slack"), DeliveryLedger(redis)
    alerts = [sample_alert(issues=n) for n in range(1, 21)]
    pending = [(alert, False) for alert in alerts]
    for _tick in range(22):  # RQ's scheduler releases jobs on whole seconds
        due, pending = pending, []
        for alert, booked in due:
            decision = deliver(alert, sink, ledger=ledger, pace=pace, booked=booked)
            if isinstance(decision, Again):
                pending.append((alert, bool(decision.state["booked"])))
        clock.now = float(int(clock.now) + 1)
    assert len(sink.sent) >= 19, "a paced sink must keep close to its rate on whole-second ticks"
    assert slept and max(slept) <= pace.interval_s
