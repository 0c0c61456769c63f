"""Voice AI agent sessions (ConversationRelay events) and carrier/SIP legs read from their
Call Summary (``call_summary`` in INSIGHTS_EDGES), through the pipeline and the simulator."""

from __future__ import annotations

from typing import Any

import pytest
import redis as redis_lib
from rq.registry import ScheduledJobRegistry

from devtools.pipeline import Pipeline, drain, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import WebhookReceiver
from service.insights.client import InsightsClient
from service.insights.summary import SummaryClient
from workers.queues import ANALYSIS_QUEUE, queue

PHONE = {"From": "+14155550100", "To": "+14155550123", "Direction": "inbound"}


def make_pipe(redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
              webhook_receiver: WebhookReceiver, **env: str) -> Pipeline:
    settings = pipeline_settings(redis_server.url, simulator,
                                 webhooks=[webhook_receiver.url_for("one")],
                                 secret=WEBHOOK_SECRET, **env)
    return Pipeline(settings, redis, simulator)


def test_a_voice_agent_session_is_alerted_in_its_own_category(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """A ConversationRelay session on a watched carrier edge: its error is an error and its
    slow speech-to-text a warning with the worst latency, both in category voice-agent."""
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver,
                     INSIGHTS_EDGES="sdk_edge,carrier_edge", FOLLOW_CHILD_LEGS="false")
    pipe.play("voice-agent", extra=PHONE, worst_latency_ms=2350)
    pipe.drain()
    [delivery] = webhook_receiver.accepted()
    issues = {i["key"]: i for i in delivery.body["data"]["issues"]}
    assert set(issues) == {"conversation_relay/error/64107", "conversation_relay/stt_latency"}
    error, slow = issues["conversation_relay/error/64107"], issues["conversation_relay/stt_latency"]
    assert (error["severity"], error["category"]) == ("error", "voice-agent")
    assert "WebSocket connection to the application closed" in error["description"]
    assert (slow["severity"], slow["category"], slow["count"]) == ("warning", "voice-agent", 1)
    assert "2,350 ms" in slow["description"] and "1,500 ms" in slow["description"]


def test_voice_agent_latency_limit_is_configurable(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """VOICE_AGENT_LATENCY_MS=3000: the same session's 2,350 ms turn is no issue."""
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver,
                     INSIGHTS_EDGES="sdk_edge,carrier_edge", VOICE_AGENT_LATENCY_MS="3000")
    pipe.play("voice-agent", extra=PHONE, worst_latency_ms=2350, error=False)
    pipe.drain()
    assert webhook_receiver.accepted() == []


def test_a_carrier_legs_summary_tags_become_warnings_after_the_summary_delay(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """With call_summary: the leg is read once, SUMMARY_DELAY_SECONDS after it ended, from a
    partial summary; its tags are network/media warnings; no Events request for it."""
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver,
                     INSIGHTS_EDGES="sdk_edge,call_summary", SUMMARY_DELAY_SECONDS="600",
                     FOLLOW_CHILD_LEGS="false")
    sid = pipe.play("carrier-leg", extra=PHONE, tags="high_jitter,silence",
                    summary_complete_after_s=3600)
    pipe.drain(until=lambda: ScheduledJobRegistry(queue=queue(ANALYSIS_QUEUE, redis)).count == 1)
    registry = ScheduledJobRegistry(queue=queue(ANALYSIS_QUEUE, redis))
    assert registry.get_job_ids() == [f"analyze-{sid}-summary"]
    assert simulator.api_requests("summary") == []
    drain(redis, ahead_s=700)
    [read] = simulator.api_requests("summary")
    assert read["params"] == {"ProcessingState": "partial"} and read["status"] == 200
    assert simulator.api_requests("events") == []
    [delivery] = webhook_receiver.accepted()
    issues = {i["key"]: i for i in delivery.body["data"]["issues"]}
    assert set(issues) == {"carrier_edge/summary/high_jitter", "carrier_edge/summary/silence"}
    assert issues["carrier_edge/summary/high_jitter"]["category"] == "network"
    assert issues["carrier_edge/summary/silence"]["category"] == "media"
    assert delivery.body["data"]["severity"] == "warning"


@pytest.mark.parametrize("tag", ["high_packet_loss", "high_latency", "high_pdd"])
def test_a_sip_legs_tags_are_network_warnings(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver, tag: str) -> None:
    """A SIP leg's tag is a network warning keyed on sip_edge (no summary delay)."""
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver,
                     INSIGHTS_EDGES="sdk_edge,call_summary", SUMMARY_DELAY_SECONDS="0")
    pipe.play("carrier-leg", extra={**PHONE, "To": "sip:agent@pbx.example.com"},
              call_type="sip", tags=tag)
    pipe.drain()
    [delivery] = webhook_receiver.accepted()
    [issue] = delivery.body["data"]["issues"]
    assert (issue["key"], issue["category"]) == (f"sip_edge/summary/{tag}", "network")


def test_without_call_summary_a_carrier_leg_costs_nothing(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """Only sdk_edge configured: no Summary and no Events request for a carrier leg."""
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver, FOLLOW_CHILD_LEGS="false")
    pipe.play("carrier-leg", extra=PHONE)
    pipe.drain()
    assert simulator.api_requests("summary") == [] and simulator.api_requests("events") == []
    assert webhook_receiver.accepted() == []


def test_the_summary_client_reads_partial_and_complete_summaries(
        simulator: SimulatorServer) -> None:
    """The simulator's summary is partial, then complete; the client reads tags from both."""
    partial = simulator.add_call("carrier-leg", tags="high_pdd", summary_complete_after_s=3600)
    complete = simulator.add_call("carrier-leg", tags="high_pdd")
    client = SummaryClient(InsightsClient(simulator.url,
                                          (simulator.account_sid, simulator.auth_token)))
    first, second = client.fetch(partial), client.fetch(complete)
    assert (first.processing_state, second.processing_state) == ("partial", "complete")
    assert first.tags == second.tags == (("carrier_edge", "high_pdd"),)


def test_a_summary_that_never_comes_is_given_up_after_the_rechecks(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """A summary Insights never has (404) is asked once per re-check, then given up with
    its own log line, not counted as an SDK call without events."""
    from structlog.testing import capture_logs

    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver,
                     INSIGHTS_EDGES="sdk_edge,call_summary", SUMMARY_DELAY_SECONDS="0",
                     FOLLOW_CHILD_LEGS="false")
    sid = "CA" + "6e" * 16  # never registered: every Summary request is a 404
    assert pipe.callback(sid, **PHONE) == 204
    with capture_logs() as logs:
        drain(redis, ahead_s=60)
    assert [r["status"] for r in simulator.api_requests("summary")] == [404, 404, 404]
    events = [line["event"] for line in logs]
    assert "summary_gave_up" in events and "sdk_calls_without_events" not in events
    assert webhook_receiver.accepted() == []
