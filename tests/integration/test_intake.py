"""The intake: one write per accepted call, moved into RQ once it is due."""

from __future__ import annotations

import redis as redis_lib
from rq.job import Job
from rq.serializers import JSONSerializer
from structlog.testing import capture_logs

from service.intake import INTAKE_KEY, Intake, call_key
from workers.intake_mover import move_due_calls
from workers.queues import analysis_job_id

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
