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
from service.intake import INTAKE_KEY, Intake, call_key
from service.web.gevent_turn import TURN_MAX_S
from workers.intake_mover import move_due_calls
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


def test_concurrent_admissions_each_get_their_own_answer_over_one_connection(
        redis: redis_lib.Redis) -> None:
    """The web process's batched intake: 40 threads admitting at once, 10 of them the same
    call, each learn whether their call was new, and all of them use one Redis connection."""
    intake = Intake(redis, batched=True)
    before = len(redis.client_list())
    calls = [_call(n) for n in range(30)] + [_call(99)] * 10
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda call: intake.admit(call, due_at=1000.0), calls))
    assert answers[:30] == [True] * 30
    assert sorted(answers[30:]) == [False] * 9 + [True]
    assert redis.zcard(INTAKE_KEY) == 31
    assert json.loads(redis.get(call_key(_call(7)["call_sid"])))["call_sid"] == _call(7)["call_sid"]
    assert len(redis.client_list()) - before == 1


def test_an_admission_after_a_redis_restart_goes_through() -> None:
    """Redis restarted between two callbacks (its connections cut, its script cache empty):
    the next admission reconnects, loads the script again and is written, no 503 to Twilio."""
    with RedisServer() as server:
        client = redis_lib.Redis.from_url(server.url, socket_timeout=2)
        intake = Intake(client, batched=True)
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
        intake = Intake(client, batched=True)
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


def test_a_request_cut_off_mid_round_trip_takes_only_its_own_deadline() -> None:
    """In the web process (gevent), the request sending a round trip is cut off by its own
    deadline: the other requests whose calls it carried are still answered and written,
    not handed its interruption (which would drop them unanswered)."""
    with RedisServer() as server:
        host, port = server.url.removeprefix("redis://").split("/")[0].split(":")
        result = _under_gevent("deadline", host, port)
    seen = result["seen"]
    assert seen["10"] == "new" and seen["11"] == "RequestTooSlow"
    # Redis ran them before the round trip was cut; sent again they read as repeats (the
    # route still answers 204): what matters is an answer and a written call
    assert {seen[n] for n in ("12", "13", "14")} <= {"new", "duplicate"}, seen
    assert all(result["written"].values())


def test_requests_under_way_share_one_round_trip_under_gevent() -> None:
    """In the web process (gevent), ten requests reaching their admission together go to Redis
    in one round trip through the intake the web app builds: the one about to send first
    lets the others add their calls. Without that, the first went alone and the other nine
    waited for a second round trip."""
    with RedisServer() as server:
        host, port = server.url.removeprefix("redis://").split("/")[0].split(":")
        result = _under_gevent("gather", host, port)
    assert result["web app"] == {"answers": [True] * 10, "round_trips": 1}
    assert result["alone"] == {"answers": [True] * 10, "round_trips": 2}


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


class _Interrupted(BaseException):
    """Stands for a request's deadline thrown into its greenlet while it gathers."""


def test_a_caller_interrupted_while_gathering_takes_its_call_back(redis: redis_lib.Redis) -> None:
    """A request cut off while it gathers, before its call was sent, gets its interruption
    and nothing of its call is written, then or by the next round trip (Twilio's retry will
    bring it again). (One cut off while it waits for the round trip in progress leaves its
    call to be sent: harmless, the retry reads as a repeat.)"""
    interrupt = [True]

    def gather() -> None:
        if interrupt[0]:
            interrupt[0] = False
            raise _Interrupted

    intake = Intake(redis, batched=True, gather=gather)
    with pytest.raises(_Interrupted):
        intake.admit(_call(1), due_at=1000.0)
    assert intake.admit(_call(2), due_at=1000.0)
    assert redis.exists(call_key(_call(1)["call_sid"])) == 0
    assert redis.zrange(INTAKE_KEY, 0, -1) == [_call(2)["call_sid"].encode()]
