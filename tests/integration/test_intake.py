"""The intake: one write per accepted call, moved into RQ once it is due."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis as redis_lib
from rq.job import Job
from rq.serializers import JSONSerializer
from structlog.testing import capture_logs

from devtools.redis_server import RedisServer
from service.intake import CLAIM_S, INTAKE_KEY, Intake, call_key
from service.web import REDIS_CONNECTIONS
from service.web.gevent_turn import TURN_MAX_S
from workers.intake_mover import DUE_BATCH, move_due_calls
from workers.queues import analysis_job_id

ROOT = Path(__file__).resolve().parents[2]
SID = "CA" + "a" * 32
CALL = {"call_sid": SID, "account_sid": "AC" + "1" * 32, "status": "completed"}


def test_admit_once_then_move_when_due(redis: redis_lib.Redis) -> None:
    """A call is admitted once, waits until due, then becomes one analyze-CA… job."""
    intake = Intake(redis)
    assert intake.admit(CALL, due_at=1000.0)
    assert not intake.admit({**CALL, "status": "busy"}, due_at=1000.0)
    assert move_due_calls(redis, now=999.0) == 0
    assert move_due_calls(redis, now=1000.0) == 1
    job = Job.fetch(analysis_job_id(SID), connection=redis, serializer=JSONSerializer)
    assert job.args[0]["status"] == "completed"
    assert redis.zcard(INTAKE_KEY) == 0


def test_a_move_repeated_after_a_crash_makes_no_second_job(redis: redis_lib.Redis) -> None:
    """If a mover died after enqueueing but before removing the call, the next pass just removes it."""
    intake = Intake(redis)
    intake.admit(CALL, due_at=1000.0)
    move_due_calls(redis, now=1000.0)
    redis.zadd(INTAKE_KEY, {SID: 1000.0})  # as if the removal never happened
    assert move_due_calls(redis, now=1001.0) == 0
    assert redis.zcard(INTAKE_KEY) == 0
    assert redis.llen("rq:queue:analysis") == 1


def test_one_pass_moves_every_due_call_however_many_batches(redis: redis_lib.Redis) -> None:
    """More calls due than one look at the intake claims: the pass looks again at once,
    until it has moved them all."""
    intake = Intake(redis)
    sids = [f"CA{index:032x}" for index in range(DUE_BATCH + 30)]
    for sid in sids:
        intake.admit({**CALL, "call_sid": sid}, due_at=1000.0)
    assert move_due_calls(redis, now=1000.0) == len(sids)
    assert redis.zcard(INTAKE_KEY) == 0
    assert redis.llen("rq:queue:analysis") == len(sids)


def test_a_due_call_goes_to_one_mover_and_comes_back_if_that_mover_dies(
        redis: redis_lib.Redis) -> None:
    """Every worker process polls the intake each second: a due call is handed to one of them
    (the others do not enqueue it again), and if that one dies before the call is in RQ, the
    call is due again ``CLAIM_S`` later."""
    intake = Intake(redis)
    intake.admit(CALL, due_at=1000.0)
    assert [sid for sid, _ in intake.due(1000.0)] == [SID]
    assert intake.due(1000.5) == []  # another mover, the same second
    assert move_due_calls(redis, now=1000.0 + CLAIM_S - 1) == 0
    assert move_due_calls(redis, now=1000.0 + CLAIM_S) == 1  # the first mover never finished
    assert redis.zcard(INTAKE_KEY) == 0
    assert redis.llen("rq:queue:analysis") == 1


def test_expired_record_is_dropped_with_an_error_log(redis: redis_lib.Redis) -> None:
    """A due call whose record expired (no worker for a day) is logged, not silently lost."""
    Intake(redis).admit(CALL, due_at=1000.0)
    redis.delete(call_key(SID))
    with capture_logs() as logs:
        assert move_due_calls(redis, now=1000.0) == 0
    assert [line["event"] for line in logs] == ["intake_call_expired"]
    assert redis.zcard(INTAKE_KEY) == 0


def _call(n: int) -> dict[str, str]:
    return {**CALL, "call_sid": f"CA{n:032x}"}


def test_concurrent_admissions_each_get_their_own_answer_over_a_bounded_pool(
        redis_server: RedisServer) -> None:
    """The web process's intake: 40 threads admitting at once, 10 of them the same call, each
    learn whether their call was new, over at most the web's few Redis connections."""
    redis = redis_lib.Redis(connection_pool=redis_lib.BlockingConnectionPool.from_url(
        redis_server.url, max_connections=REDIS_CONNECTIONS, timeout=10))
    redis.flushall()
    intake = Intake(redis)
    before = len(redis.client_list())
    calls = [_call(n) for n in range(30)] + [_call(99)] * 10
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda call: intake.admit(call, due_at=1000.0), calls))
    assert answers[:30] == [True] * 30
    assert sorted(answers[30:]) == [False] * 9 + [True]
    assert redis.zcard(INTAKE_KEY) == 31
    assert json.loads(redis.get(call_key(_call(7)["call_sid"])))["call_sid"] == _call(7)["call_sid"]
    assert len(redis.client_list()) - before <= REDIS_CONNECTIONS - 1  # the first is counted in before


def test_an_admission_after_a_redis_restart_goes_through() -> None:
    """Redis restarted between two callbacks (its connections cut, its script cache empty):
    the next admission reconnects, loads the script again and is written, no 503 to Twilio."""
    with RedisServer() as server:
        client = redis_lib.Redis.from_url(server.url, socket_timeout=2)
        intake = Intake(client)
        assert intake.admit(_call(1), due_at=1000.0)
        server.stop()
        server.start()
        assert intake.admit(_call(2), due_at=1000.0)
        assert not intake.admit(_call(2), due_at=1000.0)
        assert client.zcard(INTAKE_KEY) == 1  # not persisted: only the call after the restart
        client.close()


def test_a_refused_write_reaches_the_caller_and_writes_nothing() -> None:
    """A full Redis (noeviction) refuses the script: the admission raises a RedisError (the
    route answers 503) and the call is not half-written."""
    with RedisServer() as server:
        client = redis_lib.Redis.from_url(server.url, socket_timeout=2)
        intake = Intake(client)
        assert intake.admit(_call(1), due_at=1000.0)
        client.set("ballast", "x" * 2_000_000)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1mb")
        with pytest.raises(redis_lib.RedisError, match="maxmemory"):
            intake.admit(_call(2), due_at=1000.0)
        client.config_set("maxmemory", "0")
        assert client.exists(call_key(_call(2)["call_sid"])) == 0
        assert client.zcard(INTAKE_KEY) == 1
        assert intake.admit(_call(2), due_at=1000.0)
        client.close()


def test_a_turn_ends_even_when_the_loop_never_goes_quiet(redis_server: RedisServer) -> None:
    """A turn (before each request, and before an admission's round trip) waits for the
    event loop to go quiet; with I/O that never stops (two greenlets playing ping-pong) it
    still ends, after its bound, instead of holding the request for ever."""
    host, port = redis_server.url.removeprefix("redis://").split("/")[0].split(":")
    result = _under_gevent("turn", host, port)
    assert result["returned"], result
    assert result["after_s"] >= TURN_MAX_S * 0.9, result


def _under_gevent(scenario: str, host: str, port: str) -> dict:
    """Run a scenario of ``tests/gevent_admissions.py`` in a gevent-patched process of its own."""
    ran = subprocess.run([sys.executable, "-m", "tests.gevent_admissions", scenario, host, port],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads(ran.stdout.splitlines()[-1])
