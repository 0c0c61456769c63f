"""Silences in Redis: they stop matching alerts in a running worker, and end by themselves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib
from structlog.testing import capture_logs

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.sample_alerts import sample_alert
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn
from service import keys
from service.delivery.incidents.desk import IncidentDesk
from service.delivery.incidents.store import IncidentStore
from service.delivery.silences import Silences, parse_duration, parse_pairs
from service.errors import InvalidInput


@pytest.fixture
def pipe(redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
         slack_receiver: SlackStandIn) -> Iterator[Pipeline]:
    slack_receiver.min_interval_s = 0
    yield Pipeline(pipeline_settings(redis_server.url, simulator, slack=slack_receiver),
                   redis, simulator)


def delivered_calls(slack: SlackStandIn) -> list[str]:
    return [m.payload["text"] for m in slack.accepted()]


def test_silence_added_while_running_stops_the_next_matching_alert_only(
        pipe: Pipeline, redis: redis_lib.Redis, slack_receiver: SlackStandIn) -> None:
    """A silence added between two calls stops the matching one, not the others."""
    first = pipe.play("sdk-error")
    pipe.drain()
    silence = Silences(redis).add(parse_pairs(["error_code=31005"]), timedelta(hours=2),
                                  "carrier outage", "ops")
    with capture_logs() as logs:
        silenced = pipe.play("sdk-error")
        other = pipe.play("warnings-cleared")
        pipe.drain()
    texts = delivered_calls(slack_receiver)
    assert any(first in t for t in texts) and any(other in t for t in texts)
    assert not any(silenced in t for t in texts)
    [event] = [e for e in logs if e["event"] == "alert_silenced"]
    assert event["silence_id"] == silence.id
    counted = redis.hgetall(keys.METRICS_PREFIX + "callwatch_alerts_silenced")
    assert {k.decode(): float(v) for k, v in counted.items()} == {"[]": 1.0}


def test_ended_silence_no_longer_stops_alerts(pipe: Pipeline, redis: redis_lib.Redis,
                                             slack_receiver: SlackStandIn) -> None:
    """A silence whose time is up lets matching alerts through, and its key expires."""
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2, seconds=5)
    Silences(redis, clock=lambda: two_hours_ago).add(parse_pairs(["severity=error"]),
                                                     timedelta(hours=2), "done")
    live = Silences(redis).add(parse_pairs(["severity=warning"]), timedelta(minutes=5), "x")
    sid = pipe.play("sdk-error")
    pipe.drain()
    assert any(sid in t for t in delivered_calls(slack_receiver))
    assert [s.id for s in Silences(redis).active()] == [live.id]
    assert 0 < redis.ttl(keys.SILENCES) <= 5 * 60 + 1


def test_expire_ends_a_silence_now(redis: redis_lib.Redis) -> None:
    """``expire`` removes the silence; an unknown id says so."""
    silences = Silences(redis)
    silence = silences.add(parse_pairs(["issue=sdk_edge/*"]), timedelta(hours=1), "x")
    assert silences.matching(sample_alert()) == silence
    assert silences.expire(silence.id) is True
    assert silences.matching(sample_alert()) is None
    assert silences.expire(silence.id) is False


def test_silence_uses_the_route_matchers(redis: redis_lib.Redis) -> None:
    """Silences take the same keys as routes (globs, lists) and refuse unknown keys."""
    silences = Silences(redis)
    silences.add(parse_pairs(["from=client:*", "country_code=US,IE"]), timedelta(hours=1), "x")
    assert silences.matching(sample_alert()) is not None
    with pytest.raises(InvalidInput, match=r"silence\.colour"):
        parse_pairs(["colour=red"])
    with pytest.raises(InvalidInput):
        parse_pairs(["severity"])


def _calls(redis: redis_lib.Redis, name: str | None = None) -> int:
    """Commands (``name``, or all but INFO) Redis has run so far (INFO commandstats)."""
    return sum(int(v["calls"]) for k, v in redis.info("commandstats").items()
               if k == f"cmdstat_{name}" or (name is None and k != "cmdstat_info"))


def test_an_alerts_silences_are_read_with_its_calls_count_once_per_analysis(
        redis: redis_lib.Redis) -> None:
    """An analysis that made an alert reads the silences on the round trip that counts the
    call, and screens against that read; one without an alert does not read them; the next
    analysis sees a silence added since."""
    silences, store = Silences(redis), IncidentStore(redis)
    silences.add(parse_pairs(["to=+1415*"]), timedelta(hours=1), "x")
    in_force = silences.in_force()
    reads = _calls(redis, "zrangebyscore")
    IncidentDesk(store, lambda alert: [], lambda name: "chat", reads=(in_force,)).analysed(None)
    assert _calls(redis, "zrangebyscore") == reads
    IncidentDesk(store, lambda alert: [], lambda name: "chat",
                 reads=(in_force,)).analysed(sample_alert())
    assert _calls(redis, "zrangebyscore") == reads + 1
    silences.add(parse_pairs(["to=+44*"]), timedelta(hours=1), "y")
    london = sample_alert(to="+442071234567")
    before = _calls(redis)
    assert in_force.matching(sample_alert()) is not None
    assert in_force.matching(london) is None  # added after this analysis's read
    assert _calls(redis) == before
    assert silences.in_force().matching(london) is not None  # the next analysis


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200),
                                               ("1h30m", 5400), ("1d", 86400)])
def test_durations(text: str, seconds: int) -> None:
    """--for takes s, m, h, d (and combinations)."""
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "2", "two hours", "0m", "60d"])
def test_bad_durations(text: str) -> None:
    """A duration that is not one, zero, or over 30 days is refused."""
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_stored_silence_reads_back(redis: redis_lib.Redis) -> None:
    """What is stored is the silence's JSON, scored by its end."""
    silence = Silences(redis).add(parse_pairs(["error_code=31005"]), timedelta(hours=1), "why", "me")
    [(member, score)] = redis.zrange(keys.SILENCES, 0, -1, withscores=True)
    assert json.loads(member)["id"] == silence.id and score == silence.ends_at.timestamp()
