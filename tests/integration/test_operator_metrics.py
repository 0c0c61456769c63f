"""The metrics an operator reads: alerts by severity, category and route, call end ->
delivered by sink type, open incidents and active silences, ``METRICS_TOKEN``, and a
scrape ``promtool check metrics`` finds clean."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis as redis_lib
from prometheus_client.parser import text_string_to_metric_families

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver
from service.delivery.silences import Silences, parse_pairs
from service.metrics import PREFIX, JobMetrics, Metrics
from service.routing_file.load import load

TOKEN = "s3cret-token-for-scrapes"
ROUTES = """
routes:
  - {name: mic, match: {error_code: [31401, 31402]}, sinks: []}
  - {name: pager, match: {severity: error}, sinks: [hooks]}
default: [chat]
storm: false
"""


@pytest.fixture
def pipe(redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
         slack_receiver: SlackStandIn, webhook_receiver: WebhookReceiver) -> Iterator[Pipeline]:
    slack_receiver.min_interval_s = 0
    config = (f'sinks:\n  chat: {{type: slack, url: "{slack_receiver.url}"}}\n'
              f'  hooks: {{type: webhook, url: "{webhook_receiver.url}", '
              f'secret: "{WEBHOOK_SECRET}"}}\n' + ROUTES)
    env = {"CALLWATCH_CONFIG": config, "METRICS_TOKEN": TOKEN}
    settings = pipeline_settings(redis_server.url, simulator, **env)
    yield Pipeline(settings, redis, simulator, routing=load(settings, env))


def scrape(pipe: Pipeline) -> str:
    response = pipe.callbacks.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name}


def test_alerts_are_counted_by_severity_category_and_first_route(pipe: Pipeline) -> None:
    """An error alert counts under its route's name, a warning under default, and an alert a
    sinkless route drops under that route (and as dropped); the routes' other label sets
    are shown at 0."""
    pipe.play("sdk-error", seed=1)
    pipe.play("warnings-cleared", seed=0)
    pipe.play("mic-denied", seed=1)
    pipe.drain()
    text = scrape(pipe)
    counted = {dict(labels)["route"]: (dict(labels)["severity"], dict(labels)["category"], n)
               for labels, n in samples(text, "callwatch_alerts_total").items() if n}
    assert counted == {"pager": ("error", "network", 1), "default": ("warning", "network", 1),
                       "mic": ("error", "device", 1)}
    assert samples(text, "callwatch_alerts_dropped_total") == {(): 1.0}
    routes = {dict(labels)["route"] for labels in samples(text, "callwatch_alerts_total")}
    assert routes == {"pager", "mic", "default"}


def test_call_end_to_delivered_latency_is_observed_by_sink_type(pipe: Pipeline) -> None:
    """Each delivered alert adds one observation labelled with its sink's type, not its name."""
    pipe.play("sdk-error", seed=1)
    pipe.play("warnings-cleared", seed=0)
    pipe.drain()
    counts = {dict(labels)["sink_type"]: n for labels, n in
              samples(scrape(pipe), "callwatch_alert_latency_seconds_count").items()}
    assert counts == {"webhook": 1, "slack": 1}
    sums = samples(scrape(pipe), "callwatch_alert_latency_seconds_sum")
    assert all(0 <= value < 600 for value in sums.values())


def test_active_silences_and_open_incidents_are_gauges(pipe: Pipeline,
                                                       redis: redis_lib.Redis) -> None:
    """A silence added shows as 1 active at once; an expired one no longer counts; an
    incident open in Redis counts until it is resolved."""
    silences = Silences(redis)
    first = silences.add(parse_pairs(["error_code=31005"]), timedelta(hours=1), "deploy")
    silences.add(parse_pairs(["category=network"]), timedelta(hours=1), "isp")
    redis.zadd("callwatch:incidents", {"inc_a": 1.0, "inc_b": 2.0})
    redis.hset("callwatch:incident:inc_a", mapping={"status": "open"})
    redis.hset("callwatch:incident:inc_b", mapping={"status": "resolved"})

    def gauges() -> tuple[float, float]:
        text = scrape(pipe)
        return (samples(text, "callwatch_silences_active")[()],
                samples(text, "callwatch_incidents_open")[()])

    assert gauges() == (2, 1)
    silences.expire(first.id)
    redis.hset("callwatch:incident:inc_a", "status", "resolved")
    assert gauges() == (1, 0)


def test_metrics_wants_the_bearer_token_when_one_is_set(pipe: Pipeline) -> None:
    """Without the token, or with another, /metrics answers 401 with a JSON error and no
    metric; the right token gets the metrics."""
    client = pipe.callbacks.client
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"},
                    {"Authorization": f"Bearer {TOKEN}X"}):
        answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 401
        assert answer.get_json()["error"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"callwatch_" not in answer.get_data()
    assert "callwatch_alerts_total" in scrape(pipe)


def test_the_token_is_masked_in_settings(pipe: Pipeline) -> None:
    """The token is a secret: a Settings' repr does not show it."""
    assert TOKEN not in repr(pipe.settings)


def test_promtool_check_metrics_finds_nothing_to_fix(pipe: Pipeline, redis: redis_lib.Redis,
                                                     ) -> None:
    """With every kind of series present (counters, both histograms, gauges), promtool's
    metrics linter reports nothing."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    pipe.play("sdk-error", seed=1)
    pipe.drain()
    Metrics(redis).observe("callwatch_delivery_duration_seconds", 0.2, sink="hooks")
    text = scrape(pipe)
    assert "callwatch_alert_latency_seconds_bucket" in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_a_jobs_metrics_reach_redis_at_its_end_in_one_command(redis: redis_lib.Redis) -> None:
    """What a job counted is in Redis once it flushes (one command, each field the sum of
    its increments), and a flush with Redis gone raises nothing: a metric is lost, not a job."""
    metrics = JobMetrics(redis)
    metrics.inc("callwatch_analyses", outcome="alert")
    metrics.inc("callwatch_analyses", 2.0, outcome="alert")
    metrics.observe("callwatch_delivery_duration_seconds", 0.2, sink="hooks")
    metrics.observe("callwatch_delivery_duration_seconds", 0.3, sink="hooks")
    assert redis.hgetall(PREFIX + "callwatch_analyses") == {}
    Metrics(redis).inc("callwatch_alerts_silenced")  # Redis knows the script from now on
    before = redis.info("commandstats")
    metrics.flush()
    after = redis.info("commandstats")
    calls = {name: after[name]["calls"] - before.get(name, {}).get("calls", 0) for name in after}
    assert {name for name, n in calls.items() if n and name != "cmdstat_info"} == {
        "cmdstat_evalsha", "cmdstat_hincrbyfloat"}
    assert calls["cmdstat_evalsha"] == 1
    assert redis.hgetall(PREFIX + "callwatch_analyses") == {b'["alert"]': b"3"}
    histogram = redis.hgetall(PREFIX + "callwatch_delivery_duration_seconds")
    assert histogram[b'["hooks"]|count'] == b"2" and histogram[b'["hooks"]|b|0.25'] == b"1"
    assert float(histogram[b'["hooks"]|sum']) == pytest.approx(0.5)
    gone = redis_lib.Redis(port=1, socket_connect_timeout=0.2)
    lost = JobMetrics(gone)
    lost.inc("callwatch_analyses", outcome="alert")
    lost.flush()
