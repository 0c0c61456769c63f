"""A killed worker is found by its closed connections, not by its alive key's expiry
(``workers.rq_adaptations.death_watch``), and its jobs are recovered at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis as redis_lib
from rq import SimpleWorker
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import now

from devtools.redis_server import RedisServer
from service import keys
from workers.intake_mover import IntakeMover, Turn
from workers.queues import ANALYSIS_QUEUE, CRASH_RETRY, queue
from workers.rq_adaptations.death_watch import STALE_AFTER_S, DeathWatch
from workers.rq_adaptations.liveness import ALIVE_TTL_S, alive_key, recover_orphaned_jobs, recovery_turn

#: A worker process's beat, as the worker writes it: named connections, one beat a
#: BEAT_EVERY_S, and nothing else. ``{url}``, ``{name}``, ``{named}``.
BEATING = textwrap.dedent("""
    import sys, time
    import redis
    from workers.rq_adaptations import pop_wake
    from workers.rq_adaptations.liveness import Heartbeat
    options = pop_wake.named_connections() if {named} else {{}}
    client = redis.Redis.from_url({url!r}, **options)
    Heartbeat(client, {name!r}, connection_name=lambda: pop_wake.name_in_use(client)).start()
    print("beating", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def beating(redis_server: RedisServer) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def start(name: str, *, named: bool = True) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", BEATING.format(url=redis_server.url, name=name, named=named)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "beating"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def _job_running_on(redis: redis_lib.Redis, worker_name: str, job_id: str) -> Job:
    """A job RQ has started on ``worker_name`` (as its worker does, by its own steps)."""
    q = queue(ANALYSIS_QUEUE, redis)
    job = q.enqueue(f"{__name__}.never_run", job_id=job_id, retry=CRASH_RETRY)
    redis.lrem(q.key, 0, job.id)
    worker = SimpleWorker([q], connection=redis, name=worker_name, serializer=JSONSerializer)
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    assert job.get_status(refresh=True) == JobStatus.STARTED
    return job


def never_run() -> None:
    raise AssertionError("only registered, never run")


def _wait_gone(redis: redis_lib.Redis, process: subprocess.Popen[str]) -> None:
    """SIGKILL ``process`` and wait until Redis has dropped its connections."""
    pid = f"-{process.pid}-"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    deadline = time.monotonic() + 10
    while any(pid in client.get("name", "") for client in redis.client_list(_type="normal")):
        assert time.monotonic() < deadline, "Redis kept the killed process's connections"
        time.sleep(0.01)


def test_a_killed_worker_is_found_dead_and_its_job_recovered_at_once(
        redis: redis_lib.Redis, beating: object) -> None:
    """SIGKILL: Redis drops its connections; the next look past a missed beat finds it dead
    long before its alive key would expire, removes its key and roster entry, marks it dead
    (its leases may be taken over), and its job (started a moment ago) goes to RQ's retry."""
    victim = beating("victim")  # type: ignore[operator]
    job = _job_running_on(redis, "victim", "analyze-victim")
    handed: list[list[str]] = []
    q = queue(ANALYSIS_QUEUE, redis)

    def recover(dead: list[str]) -> bool:
        handed.append(dead)
        recover_orphaned_jobs(redis, [q], dead=dead)
        return True

    watch = DeathWatch(redis, on_dead=recover, reconnected_s=0)
    past_a_beat = time.time() + STALE_AFTER_S + 0.5

    assert watch.look(past_a_beat) == []  # alive: its connection is open
    _wait_gone(redis, victim)

    assert watch.look(time.time()) == []  # no beat missed yet: nothing is looked up
    assert watch.look(past_a_beat) == ["victim"]
    assert handed == [["victim"]]
    assert redis.ttl(alive_key("victim")) == -2  # gone, though its TTL had seconds to run
    assert redis.zscore(keys.WORKERS_ALIVE, "victim") is None
    assert redis.exists(keys.worker_dead("victim"))
    assert job.get_status(refresh=True) == JobStatus.SCHEDULED  # CRASH_RETRY's first wait
    assert watch.look(past_a_beat) == []  # found once
    assert handed == [["victim"]]


def test_a_dead_worker_is_handed_again_until_its_recovery_runs(
        redis: redis_lib.Redis, beating: object) -> None:
    """Another process's recovery was running (``on_dead`` False): the names are kept and
    handed again at the next look, though the roster no longer shows them."""
    victim = beating("victim")  # type: ignore[operator]
    answers, handed = [False, True], []
    watch = DeathWatch(redis, on_dead=lambda dead: (handed.append(dead), answers.pop(0))[1],
                       reconnected_s=0)
    _wait_gone(redis, victim)
    past_a_beat = time.time() + STALE_AFTER_S + 0.5
    assert watch.look(past_a_beat) == ["victim"]
    assert watch.look(past_a_beat) == []
    assert handed == [["victim"], ["victim"]]
    watch.look(past_a_beat)
    assert len(handed) == 2  # recovered: not handed again


def test_nothing_is_judged_dead_just_after_the_watch_reconnected(
        redis: redis_lib.Redis, beating: object) -> None:
    """After a Redis restart every process has lost its connections and reconnects at its
    next command: a watch whose own connection is young judges nobody."""
    victim = beating("victim")  # type: ignore[operator]
    _wait_gone(redis, victim)
    watch = DeathWatch(redis, on_dead=lambda dead: pytest.fail(f"judged dead: {dead}"))
    assert watch.look(time.time() + STALE_AFTER_S + 0.5) == []  # its connection: a moment old
    assert redis.exists(alive_key("victim"))


def test_a_worker_whose_alive_key_expired_is_left_to_the_old_rule(
        redis: redis_lib.Redis, beating: object) -> None:
    """A key gone by its TTL says only that the worker was silent (a long pause, an
    outage): no dead mark, no recovery without the grace."""
    victim = beating("silent")  # type: ignore[operator]
    _wait_gone(redis, victim)
    redis.delete(alive_key("silent"))
    watch = DeathWatch(redis, on_dead=lambda dead: pytest.fail(f"judged dead: {dead}"),
                       reconnected_s=0)
    assert watch.look(time.time() + STALE_AFTER_S + 0.5) == []
    assert not redis.exists(keys.worker_dead("silent"))


def test_a_worker_that_only_missed_a_beat_is_left_alone(
        redis: redis_lib.Redis, beating: object) -> None:
    """A stopped (SIGSTOP: slow, paused) worker keeps its connections: however late its
    beat, it is not judged dead here, and its alive key keeps its TTL."""
    paused = beating("paused")  # type: ignore[operator]
    paused.send_signal(signal.SIGSTOP)
    try:
        watch = DeathWatch(redis, on_dead=lambda dead: pytest.fail(f"judged dead: {dead}"),
                           reconnected_s=0)
        assert watch.look(time.time() + ALIVE_TTL_S - 1) == []
        assert redis.exists(alive_key("paused"))
    finally:
        paused.send_signal(signal.SIGCONT)


def test_a_worker_with_unnamed_connections_waits_for_its_alive_key(
        redis: redis_lib.Redis, beating: object) -> None:
    """Unnamed connections (a Redis that refused ``CLIENT SETNAME``) cannot be told apart:
    a killed worker's alive key then runs its TTL, as before the watch."""
    victim = beating("unnamed", named=False)  # type: ignore[operator]
    assert redis.get(alive_key("unnamed")) == b"1"
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    watch = DeathWatch(redis, on_dead=lambda dead: pytest.fail(f"judged dead: {dead}"),
                       reconnected_s=0)
    assert watch.look(time.time() + STALE_AFTER_S + 0.5) == []
    assert redis.exists(alive_key("unnamed"))


def test_a_job_of_a_worker_found_dead_skips_the_grace_a_silent_one_gets(
        redis: redis_lib.Redis) -> None:
    """``recover_orphaned_jobs``: a job started under ``ALIVE_TTL_S`` ago whose worker's key is
    gone waits (its worker may only be silent) unless the worker was found dead."""
    q = queue(ANALYSIS_QUEUE, redis)
    job = _job_running_on(redis, "gone", "analyze-young")
    assert recover_orphaned_jobs(redis, [q]) == []
    assert job.get_status(refresh=True) == JobStatus.STARTED
    assert recover_orphaned_jobs(redis, [q], dead={"gone"}) == ["analyze-young"]
    assert job.get_status(refresh=True) == JobStatus.SCHEDULED
    later = timedelta(seconds=ALIVE_TTL_S + 1)
    assert recover_orphaned_jobs(redis, [q], clock=lambda: now() + later) == []  # once


def test_one_recovery_at_a_time(redis: redis_lib.Redis, redis_server: RedisServer) -> None:
    """RQ's clean-up of an abandoned job must not run twice at once: the watch and the
    maintenance pass of another process take turns."""
    other_redis = redis_lib.Redis.from_url(redis_server.url)
    try:
        with recovery_turn(redis) as first, recovery_turn(other_redis) as second:
            assert first and not second
        with recovery_turn(other_redis) as again:
            assert again
    finally:
        other_redis.close()


def test_the_container_turn_runs_the_watch_after_the_intake_and_outlives_its_failures(
        redis: redis_lib.Redis) -> None:
    """``IntakeMover(also=...)``: each turn moves due calls, then runs each task; a task that
    raises (a bug, a Redis error) is logged and the turns go on."""
    ran: list[str] = []
    calls = iter([RuntimeError("a bug"), redis_lib.ConnectionError("gone"), None, None, None])

    def task() -> None:
        ran.append("task")
        failure = next(calls, None)
        if failure is not None:
            raise failure

    def move(_: redis_lib.Redis) -> int:
        ran.append("move")
        return 0

    mover = IntakeMover(redis, turn=Turn(), move=move, also=[task]).start()
    deadline = time.monotonic() + 10
    while ran.count("task") < 3:
        assert time.monotonic() < deadline, f"the turns stopped: {ran}"
        time.sleep(0.05)
    mover.stop()
    assert ran[:6] == ["move", "task"] * 3
