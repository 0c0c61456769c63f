"""The RQ behaviours the worker edge relies on, one test each: an RQ upgrade that changes
one of them fails here, naming the ``workers`` module that depends on it."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis as redis_lib
from rq import Queue, SimpleWorker, get_current_job
from rq.exceptions import DequeueTimeout, DuplicateJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from workers.queues import CRASH_RETRY, RESULT_TTL_S, queue
from workers.rq_adaptations.liveness import Heartbeat
from workers.rq_adaptations.one_start import StartsInOneTransaction
from workers.rq_adaptations.pop_wake import POP_WAIT_S
from workers.rq_adaptations.pubsub_reads import READ_S, ShortPubSubReads
from workers.rq_adaptations.redis_loss import RedisLost
from workers.rq_adaptations.scheduler_locks import LOCK_TTL_S
from workers.rq_adaptations.scheduler_process import enqueue_when_due
from workers.rq_adaptations.shutdown import StopSignal
from workers.rq_adaptations.unique_enqueue import OneTripUniqueQueue
from workers.worker import CallwatchSimpleWorker, build_worker


@contextlib.contextmanager
def sigterm_restored() -> Iterator[None]:
    """RQ's ``work()`` installs its own SIGTERM handler: the test process's comes back after."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class PinWorker(ShortPubSubReads, SimpleWorker):
    """RQ's in-process worker, but for its command channel read in 1 s slices: RQ's own 60 s
    reads hold a burst worker's teardown for up to a minute now and then (``pubsub_reads``,
    pinned below), which under load made these pins take minutes."""


#: What the recording job saw as SIGTERM's handler.
seen: dict[str, object] = {}


def record_sigterm_handler() -> str:
    """A job: note which handler SIGTERM has while RQ's loop runs."""
    seen["handler"] = signal.getsignal(signal.SIGTERM)
    return "ok"


def fail_with_redis_error() -> None:
    raise redis_lib.ConnectionError("gone")


def test_rq_installs_request_stop_as_its_sigterm_handler(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.shutdown: RQ's loop routes SIGTERM to the worker's ``request_stop``."""
    q = queue("pins", redis)
    q.enqueue(f"{__name__}.record_sigterm_handler")
    worker = CallwatchSimpleWorker([q], connection=redis, serializer=JSONSerializer)
    with sigterm_restored():
        worker.work(burst=True)
    assert seen["handler"] == worker.request_stop


def test_rq_ends_its_loop_when_the_dequeue_returns_nothing(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.dequeue: a None from ``dequeue_job_and_maintain_ttl`` ends RQ's loop."""
    stop = StopSignal()
    stop.record(signal.SIGTERM)
    worker = build_worker(redis, stop=stop)
    with sigterm_restored():
        assert worker.work() is False  # returns at once, no job taken


def test_rq_reports_an_unblocked_pop_as_a_timeout(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.pop_wake: ``CLIENT UNBLOCK ... TIMEOUT`` ends RQ's blocking
    ``Queue.lpop`` with ``DequeueTimeout``, as its own timeout would."""
    kwargs = redis.connection_pool.connection_kwargs
    popper = redis_lib.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0),
                             client_name="pin-pop")
    ended: list[str] = []

    def pop() -> None:
        try:
            Queue.lpop(["rq:queue:pin"], 30, connection=popper)
        except DequeueTimeout:
            ended.append("timeout")

    thread = threading.Thread(target=pop, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    blocked: list[dict[str, str]] = []
    while not blocked and time.monotonic() < deadline:
        blocked = [client for client in redis.client_list()
                   if client.get("name") == "pin-pop" and "b" in client["flags"]]
    assert blocked, "the pop never blocked"
    assert redis.client_unblock(int(blocked[0]["id"]))
    thread.join(timeout=10)
    popper.close()
    assert ended == ["timeout"]


def test_rq_reraises_system_exit_from_its_loop(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.redis_loss: RQ's loop lets ``SystemExit`` (``RedisLost``) through, unlogged."""
    worker = build_worker(redis)

    def lost(*args: object) -> None:
        raise RedisLost(redis_lib.ConnectionError("gone"))

    worker.dequeue_job_and_maintain_ttl = lost  # type: ignore[method-assign]
    previous = signal.getsignal(signal.SIGTERM)
    try:
        worker.work()
        raise AssertionError("RedisLost did not leave RQ's loop")
    except RedisLost:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_rq_retries_a_started_job_whose_execution_score_expired(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.liveness: a started-registry entry scored 0 is abandoned for RQ's clean-up,
    which retries it (``CRASH_RETRY``)."""
    q = queue("pins", redis)
    job = q.enqueue(f"{__name__}.record_sigterm_handler", retry=CRASH_RETRY)
    redis.lrem(q.key, 0, job.id)
    registry = StartedJobRegistry(queue=q)
    redis.zadd(registry.key, {f"{job.id}:e1": 0})
    job.set_status(JobStatus.STARTED)
    registry.cleanup()
    assert job.get_status(refresh=True) in (JobStatus.SCHEDULED, JobStatus.QUEUED)
    assert job.id not in registry


def test_rq_gives_an_in_process_job_its_whole_timeout_before_it_is_abandoned(
        redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.liveness: RQ's SimpleWorker keeps a running job registered for its timeout
    plus 60 s (no setting shortens it): why callwatch beats its own liveness key."""
    job = Job.create(record_sigterm_handler, timeout=180, connection=redis)
    assert SimpleWorker.get_heartbeat_ttl(None, job) == 240  # type: ignore[arg-type]


def test_rq_scheduler_lock_ttl_is_what_scheduler_locks_assumes(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.scheduler_locks: RQ's scheduler lock lives ``LOCK_TTL_S``, renewed by it."""
    scheduler = RQScheduler(["pins"], connection=redis, serializer=JSONSerializer)
    assert scheduler.acquire_locks() == {"pins"}
    assert LOCK_TTL_S - 1 <= redis.ttl(RQScheduler.get_locking_key("pins")) <= LOCK_TTL_S
    scheduler.release_locks()
    scheduler.connection.close()  # RQ's scheduler builds a client of its own


def test_rq_runs_a_job_id_pushed_back_to_the_front_of_its_queue_list(
        redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.sink_lines: an RQ queue is the Redis list ``Queue.key`` of job ids; a popped
    job's id pushed back at its head (as a released line does, in Lua) is the next job RQ
    sees, arguments and all, with no other bookkeeping."""
    q: Queue = queue("pins", redis)
    first = q.enqueue(f"{__name__}.record_sigterm_handler", job_id="deliver-x")
    q.enqueue(f"{__name__}.record_sigterm_handler", job_id="deliver-y")
    assert q.key == "rq:queue:pins"
    redis.lrem(q.key, 0, first.id)  # as a worker pops it and parks it
    redis.lpush(q.key, first.id)
    assert q.job_ids == ["deliver-x", "deliver-y"]
    assert q.fetch_job("deliver-x").func_name == f"{__name__}.record_sigterm_handler"  # type: ignore[union-attr]


def test_rq_keeps_nothing_of_a_job_finished_with_result_ttl_zero(redis: redis_lib.Redis) -> None:
    """workers.queues: ``result_ttl=0`` deletes a finished job's hash and writes no result."""
    assert RESULT_TTL_S == 0
    q = queue("pins", redis)
    q.enqueue(f"{__name__}.record_sigterm_handler", job_id="done-job", result_ttl=RESULT_TTL_S)
    worker = PinWorker([q], connection=redis, serializer=JSONSerializer)
    with sigterm_restored():
        worker.work(burst=True)
    time.sleep(0.1)
    assert not Job.exists("done-job", connection=redis)
    assert [key for key in redis.scan_iter("rq:result*")] == []


def test_rq_reads_its_command_channel_for_60_s_at_a_time(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.pubsub_reads: RQ's own ``subscribe`` reads the channel in 60 s slices, which a
    teardown can wait out (redis-py's ``PubSubWorkerThread.stop`` joins the thread)."""
    worker = SimpleWorker([queue("pins", redis)], connection=redis, serializer=JSONSerializer)
    worker.subscribe()
    try:
        assert worker.pubsub_thread.sleep_time == 60
    finally:
        worker.pubsub_thread.stop(timeout=0)  # ends with its 60 s wait; a daemon meanwhile
        worker.pubsub.unsubscribe()


def test_a_worker_stops_listening_at_once_even_when_its_reader_raced_the_unsubscribe(
        redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.pubsub_reads: the reader thread has already read UNSUBSCRIBE's reply and
    started its next read when RQ's teardown asks it to stop: the teardown still returns
    promptly (it waited a whole 60 s read with RQ's subscribe)."""
    worker = build_worker(redis)
    worker.subscribe()
    thread = worker.pubsub_thread
    assert thread.sleep_time == READ_S
    worker.pubsub.unsubscribe()  # the reader consumes the reply and reads again
    deadline = time.monotonic() + 10
    while worker.pubsub.subscribed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker.pubsub.subscribed
    teardown = threading.Thread(target=worker.unsubscribe, daemon=True)
    teardown.start()
    teardown.join(timeout=10 * READ_S)
    alive = teardown.is_alive(), thread.is_alive()
    thread.join(70)  # (a failure) let the reader end before the fixture empties Redis
    assert alive == (False, False)


def test_redis_py_stop_waits_for_the_reader_unless_given_a_timeout(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.pubsub_reads and ``abandon()`` in workers.worker: redis-py's
    ``PubSubWorkerThread.stop()`` joins the reader thread; ``stop(timeout=0)`` only clears
    its flag and returns while the reader is still in its wait."""
    pubsub = redis.pubsub()
    pubsub.subscribe(**{"pins": lambda message: None})
    reader = pubsub.run_in_thread(sleep_time=READ_S, daemon=True)
    time.sleep(0.1)  # in its wait for a message
    reader.stop(timeout=0)
    still_reading = reader.is_alive()
    reader.join(10 * READ_S)
    assert still_reading and not reader.is_alive()
    pubsub = redis.pubsub()
    pubsub.subscribe(**{"pins": lambda message: None})
    reader = pubsub.run_in_thread(sleep_time=READ_S, daemon=True)
    time.sleep(0.1)
    reader.stop()
    assert not reader.is_alive()


ALARM_SEEN: list[float] = []


def record_alarm() -> None:
    """A job that notes how long RQ's alarm has left while it runs."""
    ALARM_SEEN.append(signal.getitimer(signal.ITIMER_REAL)[0])


def test_rq_arms_its_job_alarm_only_while_the_job_runs(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.shutdown: an in-process worker arms ``SIGALRM`` for the job's timeout only
    around the job's code (a stop shortens that alarm), and disarms it afterwards."""
    q = queue("pins", redis)
    q.enqueue(f"{__name__}.record_alarm", job_id="alarmed", job_timeout=120)
    worker = PinWorker([q], connection=redis, serializer=JSONSerializer)
    with sigterm_restored():
        worker.work(burst=True)
    assert len(ALARM_SEEN) == 1 and 110 < ALARM_SEEN[0] <= 120
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def do_nothing() -> str:
    return "ok"


def test_rq_beats_and_writes_idle_around_every_job(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.round_trips: RQ's loop renews the registration with a plain
    ``heartbeat()`` after each job, looks for a suspension before each, writes ``idle`` after
    each, and beats the job as its code returns (``handle_execution_ended``): the calls
    ``FewerRoundTrips`` thins out."""
    calls: list[str] = []

    class Recording(PinWorker):
        def heartbeat(self, timeout: int | None = None, pipeline: object = None) -> None:
            if timeout is None and pipeline is None:
                calls.append("heartbeat")
            super().heartbeat(timeout, pipeline)  # type: ignore[arg-type]

        def check_for_suspension(self, burst: bool) -> None:
            calls.append("suspension")
            super().check_for_suspension(burst)

        def set_state(self, state: str, pipeline: object = None) -> None:
            if pipeline is None:
                calls.append("state " + str(getattr(state, "value", state)))
            super().set_state(state, pipeline)  # type: ignore[arg-type]

        def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
            calls.append("ended")
            super().handle_execution_ended(job, queue, heartbeat_ttl)

    q = queue("pins", redis)
    for _ in range(2):
        q.enqueue(f"{__name__}.do_nothing")
    worker = Recording([q], connection=redis, serializer=JSONSerializer)
    with sigterm_restored():
        worker.work(burst=True)
    after_first = calls[calls.index("ended"):]
    assert after_first[:4] == ["ended", "state idle", "heartbeat", "suspension"]
    assert calls.count("ended") == 2


def test_a_worker_going_from_job_to_job_stays_busy_and_says_idle_once_it_waits(
        redis: redis_lib.Redis) -> None:
    """callwatch's worker: no ``idle`` write between two jobs; once it has waited a whole
    pop (``POP_WAIT_S``) for the next, its registration says ``idle``."""
    q = queue("analysis", redis)
    q.enqueue(f"{__name__}.do_nothing")
    stop = StopSignal()
    worker = build_worker(redis, stop=stop)
    states: list[bytes | None] = []
    original = worker.execute_job

    def execute_then_look(job: Job, queue_: Queue) -> None:
        original(job, queue_)
        states.append(redis.hget(worker.key, "state"))  # type: ignore[arg-type]

    worker.execute_job = execute_then_look  # type: ignore[method-assign]
    threading.Timer(POP_WAIT_S + 1.5, stop.record, args=(signal.SIGTERM,)).start()
    previous = signal.getsignal(signal.SIGTERM)
    seen_idle: list[bytes | None] = []
    watcher = threading.Timer(POP_WAIT_S + 1.0,
                              lambda: seen_idle.append(redis.hget(worker.key, "state")))
    watcher.start()
    try:
        worker.work()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert states == [b"busy"]
    assert seen_idle == [b"idle"]


def _commands(redis: redis_lib.Redis, *names: str) -> dict[str, int]:
    """How many times Redis has run each command (INFO commandstats)."""
    stats = redis.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names}


def _job_keys(redis: redis_lib.Redis, job_id: str) -> list[bytes]:
    """Every key left that names the job (its hash, executions, results, dependents)."""
    return sorted(redis.scan_iter(f"*{job_id}*"))


def test_rq_reads_a_finished_jobs_dependents_before_its_transaction(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.round_trips: RQ finishes a job that succeeded by WATCHing and
    reading its dependents (and enqueues them); callwatch's worker finishes a job that keeps
    no result in one transaction, leaving the same trace: no key of the job or of its
    execution, no registry entry."""
    q = queue("pins", redis)
    parent = q.enqueue(f"{__name__}.do_nothing", job_id="parent", result_ttl=0)
    q.enqueue(f"{__name__}.do_nothing", job_id="child", depends_on=parent, result_ttl=0)
    before = _commands(redis, "watch", "smembers")
    with sigterm_restored():
        PinWorker([q], connection=redis, serializer=JSONSerializer).work(burst=True)
    after = _commands(redis, "watch", "smembers")
    assert after["watch"] > before["watch"] and after["smembers"] > before["smembers"]
    assert not Job.exists("child", connection=redis)  # RQ enqueued and ran the dependent

    q.enqueue(f"{__name__}.do_nothing", job_id="plain", result_ttl=0)
    worker = CallwatchSimpleWorker([q], connection=redis, serializer=JSONSerializer)
    before = _commands(redis, "watch", "smembers")
    with sigterm_restored():
        worker.work(burst=True)
    assert _commands(redis, "watch")["watch"] == before["watch"]
    assert not Job.exists("plain", connection=redis)
    assert redis.zcard(q.started_job_registry.key) == 0
    assert _job_keys(redis, "plain") == [] and _job_keys(redis, "parent") == []
    assert [key for key in redis.scan_iter("rq:execution*")] == []


#: What the recording job saw of its own start (``_start_state``), one entry a run.
STARTS: list[dict[str, object]] = []


def record_start() -> None:
    """A job: note what Redis holds of its start while its code runs."""
    job = get_current_job()
    assert job is not None
    STARTS.append(_start_state(job.connection, job))


def _start_state(redis: redis_lib.Redis, job: Job) -> dict[str, object]:
    """What RQ wrote to start ``job``, with ids and timestamps left out and TTLs rounded to
    10 s (so two starts compare equal)."""
    fields = {k.decode(): v.decode(errors="replace")  # the job's data is compressed
              for k, v in redis.hgetall(job.key).items()}  # type: ignore[union-attr]
    worker = fields["worker_name"]
    members = redis.zrange(job.started_job_registry.key, 0, -1, withscores=True)
    (entry, deadline), = members  # type: ignore[misc]
    execution_id = entry.decode().split(":", 1)[1]
    execution = Execution(execution_id, job.id, connection=redis)
    executions_key = f"rq:worker:{worker}:executions"

    def ttl(key: str) -> int:
        seconds = int(redis.ttl(key))  # type: ignore[arg-type]
        return seconds if seconds < 0 else round(seconds, -1)

    return {
        "job fields": sorted(fields), "status": fields["status"], "job ttl": ttl(job.key),
        "registry deadline in": round(deadline - time.time(), -1),
        "execution fields": sorted(k.decode() for k in redis.hkeys(execution.key)),  # type: ignore[union-attr]
        "execution worker": redis.hget(execution.key, "worker_name") == worker.encode(),
        "execution ttl": ttl(execution.key),
        "job executions": redis.zrange(job.execution_registry.key, 0, -1) == [execution_id.encode()],
        "job executions ttl": ttl(job.execution_registry.key),
        "worker state": redis.hget(f"rq:worker:{worker}", "state"),
        "worker beat": redis.hexists(f"rq:worker:{worker}", "last_heartbeat"),
        "worker ttl": ttl(f"rq:worker:{worker}"),
        "worker executions": redis.smembers(executions_key) == {entry},
        "worker executions ttl": ttl(executions_key),
    }


class _RecordsStarts(BaseWorker):
    """Notes the transactions each start step runs and what Redis holds of the job between
    them."""

    multis: list[tuple[str, int]]
    between: list[tuple[object, bytes | None, int]]

    def prepare_execution(self, job: Job) -> Execution:
        before = _commands(self.connection, "multi")["multi"]
        execution = super().prepare_execution(job)
        self.multis.append(("prepare_execution", _commands(self.connection, "multi")["multi"] - before))
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        fresh = Job.fetch(job.id, connection=self.connection, serializer=JSONSerializer)
        self.between.append((fresh.get_status(), self.connection.hget(job.key, "worker_name"),
                             int(self.connection.zcard(job.started_job_registry.key))))  # type: ignore[arg-type]
        before = _commands(self.connection, "multi")["multi"]
        super().prepare_job_execution(job, remove_from_intermediate_queue)
        self.multis.append(("prepare_job_execution",
                            _commands(self.connection, "multi")["multi"] - before))


class RecordsStartTransactions(_RecordsStarts, PinWorker):
    """RQ's in-process worker, recording its start."""


class OneStartRecording(_RecordsStarts, StartsInOneTransaction, PinWorker):
    """The same, with callwatch's one start transaction."""


def test_rq_starts_an_in_process_job_in_two_transactions(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.one_start: RQ's in-process worker registers the execution in one
    transaction (``prepare_execution``) and marks the job started in a second
    (``prepare_job_execution``); in between the job is in the started registry, ``queued``,
    with no worker name. callwatch's starts it in the first and writes nothing in the second."""
    q = queue("pins", redis)
    for worker_class in (RecordsStartTransactions, OneStartRecording):
        q.enqueue(f"{__name__}.do_nothing", job_timeout=120)
        worker = worker_class([q], connection=redis, serializer=JSONSerializer)
        worker.multis, worker.between = [], []
        with sigterm_restored():
            worker.work(burst=True)
        if worker_class is RecordsStartTransactions:
            assert worker.multis == [("prepare_execution", 1), ("prepare_job_execution", 1)]
            assert worker.between == [(JobStatus.QUEUED, b"", 1)]  # no worker name
        else:
            assert worker.multis == [("prepare_execution", 1), ("prepare_job_execution", 0)]
            assert worker.between == [(JobStatus.STARTED, worker.name.encode(), 1)]


def test_one_start_transaction_leaves_what_rqs_two_leave(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.one_start: while the job's code runs, Redis holds the same of its
    start (job, execution, registries, worker, TTLs) after callwatch's one transaction as
    after RQ's two."""
    STARTS.clear()
    q = queue("pins", redis)
    for worker_class in (PinWorker, OneStartPinWorker):
        q.enqueue(f"{__name__}.record_start", job_timeout=120)
        with sigterm_restored():
            worker_class([q], connection=redis, serializer=JSONSerializer).work(burst=True)
    assert len(STARTS) == 2
    assert STARTS[0]["status"] == JobStatus.STARTED and STARTS[0]["worker state"] == b"busy"
    assert STARTS[0]["execution ttl"] == 180  # the job's timeout + 60 s
    assert STARTS[0]["job ttl"] == -1  # persisted
    assert STARTS[1] == STARTS[0]


class OneStartPinWorker(StartsInOneTransaction, PinWorker):
    """RQ's in-process worker with callwatch's one start transaction only."""


def _enqueued_state(redis: redis_lib.Redis, q: Queue, job_id: str) -> dict[str, object]:
    """What a unique enqueue left: the job's hash (its timestamps and queue name left out),
    its TTL, the queue's list and ``rq:queues``."""
    raw = redis.hgetall(f"rq:job:{job_id}")
    fields = {k.decode(): v for k, v in raw.items()  # type: ignore[union-attr]
              if k not in (b"created_at", b"enqueued_at", b"origin")}
    return {"job": fields, "origin": raw[b"origin"] == q.name.encode(),  # type: ignore[index]
            "ttl": round(int(redis.ttl(f"rq:job:{job_id}")), -1),  # type: ignore[arg-type]
            "queue": q.job_ids, "registered": redis.sismember("rq:queues", q.key)}


def test_rq_registers_the_queue_apart_from_its_unique_enqueue_script(
        redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.unique_enqueue: RQ's unique enqueue adds the queue to
    ``rq:queues`` in a transaction of its own, then runs its script; callwatch's queue runs
    one script."""
    rq_queue = Queue("pins", connection=redis, serializer=JSONSerializer)
    rq_queue.enqueue(do_nothing, job_id="warm-up", unique=True)  # RQ loads its script
    before = _commands(redis, "multi", "evalsha", "sadd")
    rq_queue.enqueue(do_nothing, job_id="rq", unique=True)
    after = _commands(redis, "multi", "evalsha", "sadd")
    assert {name: after[name] - before[name] for name in after} == \
        {"multi": 1, "evalsha": 1, "sadd": 1}
    ours = queue("pins", redis)
    ours.enqueue(do_nothing, job_id="warm-up-too", unique=True)
    before = _commands(redis, "multi", "evalsha", "sadd")
    ours.enqueue(do_nothing, job_id="ours", unique=True)
    after = _commands(redis, "multi", "evalsha", "sadd")
    assert {name: after[name] - before[name] for name in after} == \
        {"multi": 0, "evalsha": 1, "sadd": 1}  # the SADD inside the script


def test_a_one_trip_unique_enqueue_leaves_what_rqs_leaves(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.unique_enqueue: the job's hash and TTL, the queue's list and
    ``rq:queues`` end as after RQ's unique enqueue, at the back and at the front; a taken id
    raises RQ's ``DuplicateJobError``, the queue registered all the same."""
    rq_queue = Queue("pins-rq", connection=redis, serializer=JSONSerializer)
    ours = queue("pins-ours", redis)
    assert isinstance(ours, OneTripUniqueQueue)
    for q in (rq_queue, ours):
        q.enqueue(do_nothing, 1, job_id=f"back-{q.name}", unique=True, ttl=600,
                  description="same", job_timeout=60, result_ttl=0, failure_ttl=99,
                  retry=CRASH_RETRY)
        q.enqueue(do_nothing, 2, job_id=f"front-{q.name}", unique=True, at_front=True,
                  description="same")
    for job_id in ("back", "front"):
        theirs = _enqueued_state(redis, rq_queue, f"{job_id}-pins-rq")
        mine = _enqueued_state(redis, ours, f"{job_id}-pins-ours")
        assert theirs["queue"] == ["front-pins-rq", "back-pins-rq"]
        assert mine["queue"] == ["front-pins-ours", "back-pins-ours"]
        theirs.pop("queue"), mine.pop("queue")
        assert mine == theirs and theirs["registered"] and theirs["origin"]
    assert _enqueued_state(redis, rq_queue, "back-pins-rq")["ttl"] == 600
    for q in (rq_queue, ours):
        redis.delete("rq:queues")
        with pytest.raises(DuplicateJobError):
            q.enqueue(do_nothing, job_id=f"back-{q.name}", unique=True)
        assert redis.smembers("rq:queues") == {q.key.encode()}
        assert len(q.job_ids) == 2


class _CountingConnection(redis_lib.Connection):
    """A real connection that counts what it sends: one per round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


def test_rq_scheduler_reads_each_registry_apart(redis: redis_lib.Redis) -> None:
    """workers.rq_adaptations.scheduler_process: each pass of RQ's scheduler reads each of
    its queues' scheduled registries in a round trip of its own; ``enqueue_when_due`` reads
    them in one and runs RQ's pass only when a job is due."""
    kwargs = redis.connection_pool.connection_kwargs
    counted = redis_lib.Redis(connection_pool=redis_lib.ConnectionPool(
        connection_class=_CountingConnection, host=kwargs["host"], port=kwargs["port"],
        db=kwargs.get("db", 0)))
    queues = [queue(name, counted) for name in ("pin-a", "pin-b", "pin-c")]
    scheduler = RQScheduler(queues, connection=counted, serializer=JSONSerializer)
    assert scheduler.acquire_locks() == {"pin-a", "pin-b", "pin-c"}
    try:
        scheduler.prepare_registries()
        _CountingConnection.sent = 0
        scheduler.enqueue_scheduled_jobs()  # RQ's own pass, nothing due
        assert _CountingConnection.sent == 3
        _CountingConnection.sent = 0
        assert not enqueue_when_due(scheduler, scheduler.enqueue_scheduled_jobs)
        assert _CountingConnection.sent == 1
        job = queues[1].enqueue_in(timedelta(seconds=-5), f"{__name__}.do_nothing")
        assert enqueue_when_due(scheduler, scheduler.enqueue_scheduled_jobs)
        assert queues[1].job_ids == [job.id]
    finally:
        scheduler.release_locks()
        counted.close()


def test_the_liveness_beat_renews_the_workers_registration_in_its_round_trip(
        redis: redis_lib.Redis) -> None:
    """callwatch's worker: the beat (every ``BEAT_EVERY_S`` of liveness) renews RQ's
    registration of the worker in its own pipeline; the loop's plain renewal then sends
    nothing."""
    worker = build_worker(redis, name="pin-renew")
    Heartbeat(redis, worker.name, renew=worker.renew_registration)._beat()
    assert redis.hget(worker.key, "last_heartbeat")
    assert 0 < redis.ttl(worker.key) <= worker.worker_ttl + 60
    before = _commands(redis, "hset", "expire")
    worker.heartbeat()
    assert _commands(redis, "hset", "expire") == before
