"""A slow sink is held to its share of the workers, its deliveries waiting in a line of
their own; a healthy sink is not held at all (real Redis, RQ's own queue)."""

from __future__ import annotations

import time

import redis as redis_lib
from rq.job import Job

from devtools.sample_alerts import sample_alert
from service import keys
from service.decisions import Again, Done
from service.delivery.ledger import DeliveryLedger
from service.delivery.sink_health import SLOW_AFTER_S, SinkHealth
from service.delivery.step import DeliveryRequest, deliver_step
from service.errors import DeliveryRetryable
from service.roster import Roster
from tests.integration.test_delivery import FakeClock, RecordingSink
from workers.queues import DELIVERY_QUEUE, queue, schedule_delivery
from workers.rq_adaptations.sink_lines import SLOTS_PER_SINK, SinkLines, release_line, release_lines
from workers.worker import build_worker

SINK = "webhook-slow"


def _queue_deliveries(redis: redis_lib.Redis, count: int, sink: str = SINK) -> list[str]:
    """``count`` delivery jobs for ``sink`` in the delivery queue; their ids in order."""
    for n in range(count):
        alert = sample_alert(call_sid=f"CA{n:032x}")
        assert schedule_delivery(redis, sink, alert.to_envelope())
    return [job_id for job_id in queue(DELIVERY_QUEUE, redis).job_ids]


def _pop_and_admit(worker: SinkLines, redis: redis_lib.Redis) -> tuple[str, bool]:
    """Take the head of the delivery queue as a worker does, and ask whether it may run."""
    q = queue(DELIVERY_QUEUE, redis)
    job_id = redis.lpop(q.key).decode()  # type: ignore[union-attr]
    job = Job.fetch(job_id, connection=redis, serializer=q.serializer)
    return job_id, worker.admit(job, q)


def _live_workers(redis: redis_lib.Redis, count: int) -> None:
    """``count`` worker processes beating, as running workers do."""
    for n in range(count):
        Roster(redis).beat(f"worker-{n}", "0123456789ab")


def test_a_healthy_sink_gets_every_worker_its_deliveries_need(redis: redis_lib.Redis) -> None:
    """With the sink healthy and eight worker processes, seven deliveries to it run at once:
    every process but one, which stays free for the other sinks and the analyses."""
    _live_workers(redis, 8)
    worker = build_worker(redis)
    ids = _queue_deliveries(redis, 8)
    admitted = [ok for _, ok in (_pop_and_admit(worker, redis) for _ in ids)]
    assert admitted == [True] * 7 + [False]
    assert release_line(redis, SINK, ids[0]) == 1  # one ends: the waiting one runs


def test_a_slow_sink_runs_in_two_slots_and_the_rest_wait_in_order(redis: redis_lib.Redis) -> None:
    """A slow sink's deliveries beyond its two slots wait in its line, in order, in neither
    the queue nor RQ's scheduled registry (no re-queue while they wait); each freed slot
    sends the head of the line to the front of the queue, where it runs in that slot."""
    SinkHealth(redis).record(SINK, SLOW_AFTER_S + 1, answered=False)
    worker = build_worker(redis)
    ids = _queue_deliveries(redis, 5)
    admitted = [_pop_and_admit(worker, redis) for _ in ids]
    assert [ok for _, ok in admitted] == [True] * SLOTS_PER_SINK + [False] * 3
    parked = [raw.decode() for raw in redis.lrange(keys.sink_line(SINK), 0, -1)]
    q = queue(DELIVERY_QUEUE, redis)
    assert parked == ids[SLOTS_PER_SINK:]
    assert q.job_ids == [] and q.scheduled_job_registry.get_job_ids() == []

    assert release_line(redis, SINK, ids[0]) == 1  # the first delivery ended
    assert q.job_ids == [ids[2]]
    assert _pop_and_admit(worker, redis) == (ids[2], True)  # it holds the freed slot
    assert release_line(redis, SINK) == 0  # both slots busy: the rest still wait


def test_when_the_sink_answers_promptly_its_whole_line_goes_back_in_order(
        redis: redis_lib.Redis) -> None:
    """Once a send answers promptly the sink is no longer slow, and the next release puts
    every waiting delivery back at the front of the queue, in the order they waited."""
    _live_workers(redis, 8)
    health = SinkHealth(redis)
    health.record(SINK, SLOW_AFTER_S + 5, answered=True)
    worker = build_worker(redis)
    later = _queue_deliveries(redis, 6)
    for _ in later:
        _pop_and_admit(worker, redis)
    assert not health.record(SINK, 0.2, answered=True)
    assert release_line(redis, SINK, later[0]) == 4
    assert queue(DELIVERY_QUEUE, redis).job_ids == later[2:]
    assert redis.sismember(keys.SINK_LINES, SINK) == 0


def test_maintenance_frees_a_dead_workers_slot_for_the_next_in_line(
        redis: redis_lib.Redis) -> None:
    """A slot whose worker died is freed at its deadline by any worker's maintenance pass,
    and the head of the line gets it: a killed worker cannot stall a slow sink's line."""
    SinkHealth(redis).record(SINK, 12.0, answered=False)
    worker = build_worker(redis)
    ids = _queue_deliveries(redis, 3)
    for _ in ids:
        _pop_and_admit(worker, redis)
    assert release_lines(redis) == 0
    redis.zadd(keys.sink_slots(SINK), {ids[0]: time.time() - 1})  # its deadline passed
    assert release_lines(redis) == 1
    assert queue(DELIVERY_QUEUE, redis).job_ids == [ids[2]]


def test_one_worker_process_per_interval_runs_the_deployments_maintenance(
        redis: redis_lib.Redis) -> None:
    """Every worker process asks for maintenance every ``MAINTENANCE_INTERVAL_S``; the first
    to ask in an interval runs it (here: freeing a dead worker's slot), the others skip the
    pass, and the next interval's first asker runs it again."""
    SinkHealth(redis).record(SINK, 12.0, answered=False)
    first, second = build_worker(redis, name="w-1"), build_worker(redis, name="w-2")
    first.run_maintenance_tasks()
    ids = _queue_deliveries(redis, 3)
    for _ in ids:
        _pop_and_admit(first, redis)
    redis.zadd(keys.sink_slots(SINK), {ids[0]: time.time() - 1})  # its deadline passed
    second.run_maintenance_tasks()  # the same interval: first's turn
    assert queue(DELIVERY_QUEUE, redis).job_ids == []
    redis.delete(keys.MAINTENANCE_TURN)  # as MAINTENANCE_INTERVAL_S later
    second.run_maintenance_tasks()
    assert queue(DELIVERY_QUEUE, redis).job_ids == [ids[2]]


def test_rqs_registry_clean_up_runs_in_one_maintenance_pass_a_minute(
        redis: redis_lib.Redis) -> None:
    """RQ's own clean-up (here: an expired entry of the finished registry) runs in the first
    maintenance pass of each ``REGISTRY_CLEANING_S``, not in every pass."""
    finished = queue(DELIVERY_QUEUE, redis).finished_job_registry
    first, second = build_worker(redis, name="w-1"), build_worker(redis, name="w-2")
    redis.zadd(finished.key, {"expired-1": 1})
    first.run_maintenance_tasks()
    assert redis.zcard(finished.key) == 0
    redis.zadd(finished.key, {"expired-2": 1})
    redis.delete(keys.MAINTENANCE_TURN)  # as MAINTENANCE_INTERVAL_S later
    second.run_maintenance_tasks()
    assert redis.zcard(finished.key) == 1
    assert not second.should_run_maintenance_tasks  # the pass counts as maintenance for RQ
    redis.delete(keys.MAINTENANCE_TURN, keys.REGISTRY_CLEANING_TURN)  # REGISTRY_CLEANING_S later
    second.run_maintenance_tasks()
    assert redis.zcard(finished.key) == 0


def test_a_send_that_times_out_or_takes_over_5_s_marks_its_sink_slow(
        redis: redis_lib.Redis) -> None:
    """The delivery step marks the sink slow when a send takes over 5 s or gets no answer
    after the connect timeout, and healthy again after the first prompt answer."""
    clock = FakeClock()
    health = SinkHealth(redis)

    def run(took_s: float, failure: Exception | None = None, n: int = 0) -> object:
        def during_send() -> None:
            clock.now += took_s
        sink = RecordingSink(SINK, failures=[failure] if failure else [], during_send=during_send)
        request = DeliveryRequest(SINK, sample_alert(issues=n + 1).to_envelope())
        return deliver_step(request, sink=sink, ledger=DeliveryLedger(redis), pace=None,
                            retry_s=(5,), jitter=lambda: 0.0, health=health, clock=clock)

    assert isinstance(run(6.0, n=1), Done)
    assert health.slow([SINK]) == {SINK: True}
    assert isinstance(run(0.3, n=2), Done)
    assert health.slow([SINK]) == {SINK: False}
    assert isinstance(run(10.0, DeliveryRetryable("timed out"), n=3), Again)
    assert health.slow([SINK]) == {SINK: True}
    assert isinstance(run(0.1, DeliveryRetryable("answered 503", status=503), n=4), Again)
    assert health.slow([SINK]) == {SINK: False}
