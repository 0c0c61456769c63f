"""Lua scripts registered once per client (``service.redis_scripts``)."""

from __future__ import annotations

import gc
import weakref

import redis as redis_lib

from service.redis_scripts import script

ECHO = "return ARGV[1]"


def test_a_client_registers_a_script_once_and_it_survives_a_script_flush(
        redis: redis_lib.Redis) -> None:
    """The same text on the same client is the same ``Script``; it still runs after Redis
    lost its scripts (a restart without persistence: redis-py loads it again)."""
    first = script(redis, ECHO)
    assert script(redis, ECHO) is first
    assert first(args=["a"]) == b"a"
    redis.script_flush()
    assert script(redis, ECHO)(args=["b"]) == b"b"


def test_each_client_has_its_own_scripts_and_they_go_with_it(redis_server) -> None:
    """A script runs on the client it was registered with; a client and its scripts are
    freed together (nothing outside the client keeps it)."""
    one = redis_lib.Redis.from_url(redis_server.url)
    other = redis_lib.Redis.from_url(redis_server.url)
    assert script(one, ECHO) is not script(other, ECHO)
    assert script(other, ECHO).registered_client is other
    gone = weakref.ref(one)
    one.close()
    del one
    gc.collect()
    assert gone() is None
    other.close()


def test_a_script_queued_on_a_pipeline_runs_with_it_even_after_a_script_flush(
        redis: redis_lib.Redis) -> None:
    """Given a pipeline (``client=``), a script is queued on it and answers in its
    ``execute()``; the pipeline loads it first if Redis lost it."""
    echo = script(redis, ECHO)
    redis.script_flush()
    pipe = redis.pipeline(transaction=False)
    pipe.set("k", "v")
    echo(args=["c"], client=pipe)
    assert pipe.execute() == [True, b"c"]
