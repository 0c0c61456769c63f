"""From a signed callback to delivered alerts: simulator, real Redis, RQ jobs, stand-ins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as redis_lib
from structlog.testing import capture_logs

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver
from workers.jobs import analyze_call
from workers.queues import analysis_job_id


@pytest.fixture
def pipe(redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
         slack_receiver: SlackStandIn, webhook_receiver: WebhookReceiver) -> Iterator[Pipeline]:
    slack_receiver.min_interval_s = 0  # pacing has its own test; keep these quick
    settings = pipeline_settings(
        redis_server.url, simulator, slack=slack_receiver,
        webhooks=[webhook_receiver.url_for("one"), webhook_receiver.url_for("two")],
        secret=WEBHOOK_SECRET)
    yield Pipeline(settings, redis, simulator)


def issues_by_key(payload: dict) -> dict[str, dict]:
    return {issue["key"]: issue for issue in payload["data"]["issues"]}


def test_sdk_error_call_alerts_once_everywhere(pipe: Pipeline, slack_receiver: SlackStandIn,
                                               webhook_receiver: WebhookReceiver) -> None:
    """An SDK 31005 call gives one Slack message and one verified webhook per URL."""
    sid = pipe.play("sdk-error")
    pipe.drain()
    [message] = slack_receiver.accepted()
    assert "error" in message.payload["text"] and sid in message.payload["text"]
    deliveries = webhook_receiver.accepted()
    assert sorted(d.name for d in deliveries) == ["one", "two"]
    for delivery in deliveries:
        assert delivery.verified
        data = delivery.body["data"]
        assert delivery.webhook_id == data["alert_id"]
        assert data["severity"] == "error" and data["call"]["call_sid"] == sid
        issue = issues_by_key(delivery.body)["sdk_edge/connection/error/31005"]
        assert issue["error_code"] == 31005 and issue["level"] == "ERROR"
        assert issue["description"]
        assert data["client"]["sdk"]["type"]


def test_warnings_call_pairs_raised_and_cleared(pipe: Pipeline,
                                                webhook_receiver: WebhookReceiver,
                                                slack_receiver: SlackStandIn) -> None:
    """Warnings raised then cleared give a warning alert with counts and durations."""
    pipe.play("warnings-cleared")
    pipe.drain()
    assert len(slack_receiver.accepted()) == 1
    body = webhook_receiver.accepted()[0].body
    assert body["data"]["severity"] == "warning"
    rtt = issues_by_key(body)["sdk_edge/network-quality-warning/high-rtt"]
    assert rtt["count"] == 2 and rtt["cleared"] is True and rtt["duration_s"] > 0


@pytest.mark.parametrize(("scenario", "key"), [
    ("ice-failure", "sdk_edge/ice-connection-state/failed"),
    ("mic-denied", "sdk_edge/get-user-media/denied"),
    ("warning-uncleared", "sdk_edge/network-quality-warning/low-mos"),
])
def test_scenarios_name_their_issue(pipe: Pipeline, webhook_receiver: WebhookReceiver,
                                    scenario: str, key: str) -> None:
    """ICE failure, microphone denied and a never-cleared warning each name their issue."""
    pipe.play(scenario)
    pipe.drain()
    bodies = [d.body for d in webhook_receiver.accepted()]
    assert len(bodies) == 2
    assert key in issues_by_key(bodies[0])
    if scenario == "warning-uncleared":
        assert issues_by_key(bodies[0])[key]["cleared"] is False


def test_clean_call_sends_nothing(pipe: Pipeline, slack_receiver: SlackStandIn,
                                  webhook_receiver: WebhookReceiver) -> None:
    """A call with only INFO/DEBUG events makes no alert at all."""
    with capture_logs() as logs:
        pipe.play("clean")
        pipe.drain()
    assert slack_receiver.messages == [] and webhook_receiver.deliveries == []
    assert any(line["event"] == "analysis_no_alert" for line in logs)


def test_failed_call_alerts_without_events(pipe: Pipeline,
                                           webhook_receiver: WebhookReceiver) -> None:
    """A `failed` call is an issue of its own, with its SIP code, even with no SDK events."""
    sid = "CA" + "f" * 32
    assert pipe.callback(sid, "failed", SipResponseCode="404") == 204
    pipe.drain()
    body = webhook_receiver.accepted()[0].body
    issue = issues_by_key(body)["call/failed"]
    assert issue["level"] == "ERROR" and issue["error_code"] == 404
    assert body["data"]["call"]["call_sid"] == sid


def test_many_events_paged(pipe: Pipeline, simulator: SimulatorServer,
                           webhook_receiver: WebhookReceiver) -> None:
    """A 2,500-event call is read across pages (PageSize=1000) and alerted once."""
    pipe.play("many-events", count=2500)
    pipe.drain()
    pages = [r for r in simulator.requests if r["path"].endswith("/Events")]
    assert len(pages) == 3
    assert len(webhook_receiver.accepted()) == 2


def test_late_events_caught_by_recheck(pipe: Pipeline, webhook_receiver: WebhookReceiver) -> None:
    """Events that appear only after the first fetch are caught by a re-check."""
    with capture_logs() as logs:
        pipe.play("late-events", events="sdk-error", ready_after_s=0.5)
        pipe.drain()
    assert any(line["event"] == "analysis_recheck_scheduled" for line in logs)
    assert len(webhook_receiver.accepted()) == 2


def test_no_events_gives_up_after_rechecks(pipe: Pipeline) -> None:
    """A call Insights never knows is re-checked each configured time, then given up with a log."""
    with capture_logs() as logs:
        assert pipe.callback("CA" + "e" * 32) == 204
        pipe.drain()
    events = [line["event"] for line in logs]
    assert events.count("analysis_recheck_scheduled") == 2
    assert events.count("analysis_gave_up") == 1


def test_advanced_features_off_reported_once(pipe: Pipeline, simulator: SimulatorServer,
                                             webhook_receiver: WebhookReceiver) -> None:
    """401/17007 fails the analysis once with its reason; it is not retried."""
    with capture_logs() as logs:
        pipe.play("advanced-features-off")
        pipe.drain()
    failures = [line for line in logs if line["event"] == "analysis_failed"]
    assert len(failures) == 1 and failures[0]["reason"] == "advanced_features_off"
    assert len([r for r in simulator.requests if r["path"].endswith("/Events")]) == 1
    assert webhook_receiver.deliveries == []
    assert pipe.redis.zcard("rq:failed:analysis") == 1


def test_failed_call_is_alerted_when_insights_refuses(pipe: Pipeline, simulator: SimulatorServer,
                                                      webhook_receiver: WebhookReceiver) -> None:
    """A `failed` call needs no events: with Advanced Features off it is still alerted, and
    the log says why its events are missing."""
    with capture_logs() as logs:
        pipe.play("advanced-features-off", status="failed", extra={"SipResponseCode": "503"})
        pipe.drain()
    bodies = [d.body for d in webhook_receiver.accepted()]
    assert len(bodies) == 2
    assert list(issues_by_key(bodies[0])) == ["call/failed"]
    [why] = [line for line in logs if line["event"] == "analysis_without_events"]
    assert why["reason"] == "advanced_features_off"
    assert not [line for line in logs if line["event"] == "analysis_failed"]


def test_a_recheck_starts_with_the_whole_insights_retry_budget(pipe: Pipeline) -> None:
    """Retries spent on 429/5xx at one check are not charged to the next: the re-check of a
    call not yet in Insights is scheduled with its attempts back at zero."""
    sid = "CA" + "d" * 32
    call_json = {"call_sid": sid, "account_sid": pipe.settings.twilio_account_sid,
                 "status": "completed"}
    assert analyze_call(call_json, recheck=0, attempt=4) == "recheck"
    assert pipe.redis.exists(f"rq:job:{analysis_job_id(sid, recheck=1)}")
    assert not pipe.redis.exists(f"rq:job:{analysis_job_id(sid, recheck=1, attempt=4)}")


@pytest.mark.parametrize("scenario", ["rate-limited", "server-errors"])
def test_insights_429_and_500_absorbed(pipe: Pipeline, webhook_receiver: WebhookReceiver,
                                       scenario: str) -> None:
    """Bursts of 429 (Retry-After) and 500 from Insights still end in one alert per sink."""
    pipe.play(scenario, events="sdk-error", failures=2)
    pipe.drain()
    assert len(webhook_receiver.accepted()) == 2
    assert len(webhook_receiver.unique_ids()) == 1


def test_reanalysis_never_sends_a_second_alert(pipe: Pipeline, slack_receiver: SlackStandIn,
                                               webhook_receiver: WebhookReceiver) -> None:
    """Running the analysis of a call again (same issues) delivers nothing new."""
    sid = pipe.play("sdk-error")
    pipe.drain()
    call_json = {"call_sid": sid, "account_sid": pipe.settings.twilio_account_sid,
                 "status": "completed"}
    analyze_call(call_json)
    pipe.drain()
    assert len(slack_receiver.accepted()) == 1
    assert len(webhook_receiver.deliveries) == 2
