"""Taking over RQ's scheduler lock from a scheduler that died."""

from __future__ import annotations

from datetime import timedelta

import redis as redis_lib
from rq.scheduler import RQScheduler
from rq.utils import now, utcformat

from workers.queues import ANALYSIS_QUEUE, DELIVERY_QUEUE
from workers.scheduler_locks import STALE_AFTER_S, release_stale_scheduler_locks


def hold_lock(redis: redis_lib.Redis, queue: str, owner: str, beat_ago_s: float | None) -> None:
    redis.set(RQScheduler.get_locking_key(queue), owner, ex=61)
    if beat_ago_s is not None:
        redis.hset(f"rq:scheduler:{owner}", "last_heartbeat",
                   utcformat(now() - timedelta(seconds=beat_ago_s)))


def test_lock_of_a_silent_scheduler_is_released(redis: redis_lib.Redis) -> None:
    """A lock whose scheduler stopped beating (or left no hash) is freed at once."""
    hold_lock(redis, ANALYSIS_QUEUE, "dead", beat_ago_s=STALE_AFTER_S + 5)
    hold_lock(redis, DELIVERY_QUEUE, "gone", beat_ago_s=None)
    assert release_stale_scheduler_locks(redis, [ANALYSIS_QUEUE, DELIVERY_QUEUE]) == [
        ANALYSIS_QUEUE, DELIVERY_QUEUE]
    assert redis.get(RQScheduler.get_locking_key(ANALYSIS_QUEUE)) is None
    assert redis.get(RQScheduler.get_locking_key(DELIVERY_QUEUE)) is None


def test_lock_of_a_live_scheduler_is_kept(redis: redis_lib.Redis) -> None:
    """A scheduler that beat a second ago keeps its lock."""
    hold_lock(redis, ANALYSIS_QUEUE, "alive", beat_ago_s=1)
    assert release_stale_scheduler_locks(redis, [ANALYSIS_QUEUE]) == []
    assert redis.get(RQScheduler.get_locking_key(ANALYSIS_QUEUE)) == b"alive"
