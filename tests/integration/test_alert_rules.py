"""The alert rules callwatch ships (docs/alerts.yaml): valid PromQL, firing on the first
failure, over series that /metrics exports at 0 from start-up."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import redis as redis_lib
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devtools.redis_server import RedisServer
from devtools.web_client import make_settings
from service.decisions import AnalysisOutcome, DeliveryOutcome
from service.web import create_app
from workers.queue_depths import RQQueueDepths

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "alerts.yaml"
RULE_TESTS = ROOT / "docs" / "alerts.test.yaml"
SELECTOR = re.compile(r"\b(callwatch_\w+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')

Sample = tuple[str, dict[str, str], float]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def rules() -> list[dict[str, str]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def scrape(redis: redis_lib.Redis, **settings: str) -> list[Sample]:
    """One /metrics of a fresh web app (Slack and two webhook sinks unless overridden)."""
    env = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
           "ALERT_WEBHOOK_URLS": "https://a.example.com/hook,https://b.example.com/hook",
           "ALERT_WEBHOOK_SECRET": "whsec_" + "A" * 43 + "=", **settings}
    url = redis.connection_pool.connection_kwargs
    app = create_app(make_settings(f"redis://{url['host']}:{url['port']}/0", **env), redis=redis,
                     queue_depths=RQQueueDepths())  # as workers.wsgi builds it
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def matches(labels: dict[str, str], matchers: str) -> bool:
    for label, op, value in MATCHER.findall(matchers):
        have = labels.get(label, "")
        found = re.fullmatch(value, have) is not None if op in ("=~", "!~") else have == value
        if found != (op in ("=", "=~")):
            return False
    return True


def test_promtool_check_rules_passes() -> None:
    """promtool accepts docs/alerts.yaml: every expression is PromQL, every rule well formed."""
    result = subprocess.run([promtool(), "check", "rules", str(RULES)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_show_rules_fire_on_the_first_failure() -> None:
    """docs/alerts.test.yaml passes: the first failed analysis or delivery fires its rule."""
    result = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], cwd=RULES.parent,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == {rule["alert"] for rule in rules()}


def test_every_series_the_rules_use_is_exported_at_zero_from_start_up(
        redis: redis_lib.Redis) -> None:
    """On an empty Redis, each selector in the rules already matches a series at 0."""
    samples = scrape(redis)
    selectors = [(name, matchers) for rule in rules()
                 for name, matchers in SELECTOR.findall(rule["expr"])]
    assert len(selectors) == len(rules())
    for name, matchers in selectors:
        exported = [(labels, value) for sample, labels, value in samples
                    if sample in (name, name.removesuffix("_total") + "_total")
                    and matches(labels, matchers)]
        assert exported, f"{name}{{{matchers}}} is not exported before its first increment"
        if name.endswith("_total"):
            assert all(value == 0 for _, value in exported), (name, exported)


def test_counters_show_every_known_label_set_at_zero(redis: redis_lib.Redis) -> None:
    """Each analysis outcome, and each configured sink x delivery outcome, is there at 0."""
    samples = {(name, tuple(sorted(labels.items()))): value
               for name, labels, value in scrape(redis)}
    for outcome in AnalysisOutcome:
        assert samples[("callwatch_analyses_total", (("outcome", outcome.value),))] == 0
    sinks = {dict(labels)["sink"] for name, labels in samples
             if name == "callwatch_deliveries_total"}
    assert sinks == {"slack", "webhook-a-example-com", "webhook-b-example-com"}
    for sink in sinks:
        for delivery in DeliveryOutcome:
            key = ("callwatch_deliveries_total", (("outcome", delivery.value), ("sink", sink)))
            assert samples[key] == 0
    key = ("callwatch_alerts_total", (("category", "network"), ("route", "default"),
                                      ("severity", "error")))
    assert samples[key] == 0
    assert samples[("callwatch_insights_events_fetched_total", ())] == 0


def test_a_counted_label_set_keeps_its_value_beside_the_zeros(redis: redis_lib.Redis) -> None:
    """A recorded count replaces the 0 of its label set; the others stay at 0."""
    from service.metrics import Metrics

    Metrics(redis).inc("callwatch_analyses", outcome="failed")
    Metrics(redis).inc("callwatch_analyses", outcome="failed")
    samples = {(name, labels.get("outcome")): value for name, labels, value in scrape(redis)
               if name == "callwatch_analyses_total"}
    assert samples[("callwatch_analyses_total", "failed")] == 2
    assert samples[("callwatch_analyses_total", "alert")] == 0


def test_while_redis_is_down_metrics_shows_the_process_own_metrics() -> None:
    """Redis unreachable: redis_up 0, no deployment counter, but process_* and python_info."""
    with RedisServer() as stopped:
        stopped.stop()
        client = redis_lib.Redis(port=stopped.port, socket_connect_timeout=0.5)
        names = {name for name, _, _ in scrape(client)}
        values = {name: value for name, labels, value in scrape(client) if not labels}
    assert values["callwatch_metrics_redis_up"] == 0
    assert not {name for name in names if name.startswith("callwatch_")} - {
        "callwatch_metrics_redis_up"}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes",
            "python_info"} <= names


def test_readme_points_at_the_rules_it_describes() -> None:
    """The README links docs/alerts.yaml and names each of its alerts."""
    readme = (ROOT / "README.md").read_text()
    assert "docs/alerts.yaml" in readme
    for rule in rules():
        assert rule["alert"] in readme, rule["alert"]

