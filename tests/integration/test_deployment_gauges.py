"""A dead or drifting deployment shows on /metrics: live workers, overdue analyses,
configuration fingerprints and slow sinks (real Redis, real worker processes)."""

from __future__ import annotations

import time

import redis as redis_lib

from devtools.processes import settings_env, worker
from devtools.redis_server import RedisServer
from service.delivery.sink_health import SinkHealth
from service.intake import Intake
from service.roster import Roster
from tests.integration.test_alert_rules import scrape


def _gauges(redis: redis_lib.Redis, **settings: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(name, tuple(sorted(labels.items()))): value
            for name, labels, value in scrape(redis, **settings)}


def test_callwatch_workers_counts_live_worker_processes(
        redis_server: RedisServer, redis: redis_lib.Redis) -> None:
    """``callwatch_workers`` is 0 with no worker, the number of worker processes while they
    run, and 0 again once they stopped."""
    assert _gauges(redis)[("callwatch_workers", ())] == 0
    process = worker(settings_env(redis_server.url), "--concurrency", "2").start()
    try:
        deadline = time.monotonic() + 30
        while _gauges(redis)[("callwatch_workers", ())] < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _gauges(redis)[("callwatch_workers", ())] == 2
    finally:
        process.stop()
        process.close()
    assert _gauges(redis)[("callwatch_workers", ())] == 0


def test_analysis_overdue_is_the_age_of_the_oldest_due_call(redis: redis_lib.Redis) -> None:
    """A call due two minutes ago that no worker moved shows as about 120 s overdue; a call
    not yet due does not count; with none, 0."""
    assert _gauges(redis)[("callwatch_analysis_overdue_seconds", ())] == 0
    intake = Intake(redis)
    intake.admit({"call_sid": "CA" + "1" * 32}, due_at=time.time() + 60)
    assert _gauges(redis)[("callwatch_analysis_overdue_seconds", ())] == 0
    intake.admit({"call_sid": "CA" + "2" * 32}, due_at=time.time() - 120)
    assert 119 <= _gauges(redis)[("callwatch_analysis_overdue_seconds", ())] <= 125


def test_processes_on_different_configurations_show_two_fingerprints(
        redis: redis_lib.Redis) -> None:
    """Each process reports its configuration's fingerprint: a worker running another
    routing than the web process makes a second ``callwatch_config_info`` series."""
    [(own, count)] = [(dict(labels)["fingerprint"], value)
                      for (name, labels), value in _gauges(redis).items()
                      if name == "callwatch_config_info"]
    assert count == 1 and len(own) == 12
    Roster(redis).beat("worker-old", "0123456789ab")
    series = {dict(labels)["fingerprint"]: value for (name, labels), value in _gauges(redis).items()
              if name == "callwatch_config_info"}
    assert series == {own: 1, "0123456789ab": 1}
    other = _gauges(redis, SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T0/B0/other")
    changed = {dict(labels)["fingerprint"] for (name, labels) in other
               if name == "callwatch_config_info"}
    assert len(changed - {own, "0123456789ab"}) == 1  # another Slack URL, another fingerprint


def test_a_slow_sink_shows_as_slow_until_it_answers_promptly(redis: redis_lib.Redis) -> None:
    """``callwatch_sink_slow{sink}`` is 0 for every configured sink, 1 once a send to it took
    over 5 s, and 0 again after a prompt answer."""
    assert _gauges(redis)[("callwatch_sink_slow", (("sink", "slack"),))] == 0
    SinkHealth(redis).record("slack", 7.5, answered=True)
    gauges = _gauges(redis)
    assert gauges[("callwatch_sink_slow", (("sink", "slack"),))] == 1
    assert gauges[("callwatch_sink_slow", (("sink", "webhook-a-example-com"),))] == 0
    SinkHealth(redis).record("slack", 0.4, answered=True)
    assert _gauges(redis)[("callwatch_sink_slow", (("sink", "slack"),))] == 0
