"""Child legs through the whole pipeline: an inbound phone call answered by a browser agent
(``<Dial><Client>``), found from the phone leg's callback alone, analysed once per CallSid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from structlog.testing import capture_logs

from devtools.pipeline import Pipeline, drain, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.legs import child_sid
from devtools.simulator.server import SimulatorServer
from devtools.standins import WebhookReceiver
from service.errors import InsightsUnavailable
from service.insights.calls_api import CallsClient
from service.insights.client import InsightsClient

PHONE = {"From": "+14155550100", "To": "+14155550123", "Direction": "inbound"}


def make_pipe(redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
              webhook_receiver: WebhookReceiver, **env: str) -> Pipeline:
    settings = pipeline_settings(redis_server.url, simulator,
                                 webhooks=[webhook_receiver.url_for("one")],
                                 secret=WEBHOOK_SECRET, **env)
    return Pipeline(settings, redis, simulator)


@pytest.fixture
def pipe(redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
         webhook_receiver: WebhookReceiver) -> Iterator[Pipeline]:
    yield make_pipe(redis, redis_server, simulator, webhook_receiver)


def insights_requests(simulator: SimulatorServer, sid: str) -> int:
    return sum(1 for r in simulator.api_requests("events") if r["call_sid"] == sid)


def test_the_agent_leg_is_alerted_from_the_phone_legs_callback_alone(
        pipe: Pipeline, simulator: SimulatorServer, webhook_receiver: WebhookReceiver) -> None:
    """One signed callback of the phone leg: the agent leg's alert arrives, naming its parent;
    the phone leg costs one Calls request and no Insights request."""
    parent = pipe.play("inbound-to-agent", extra=PHONE)
    pipe.drain()
    [delivery] = webhook_receiver.accepted()
    data = delivery.body["data"]
    assert data["call"]["call_sid"] == child_sid(parent, 0)
    assert data["call"]["parent_call_sid"] == parent
    assert data["call"]["to"] == "client:alice" and data["call"]["direction"] == "outbound-dial"
    assert [i["key"] for i in data["issues"]] == ["sdk_edge/connection/error/31005"]
    calls = simulator.api_requests("calls")
    assert len(calls) == 1
    assert calls[0]["params"]["ParentCallSid"] == parent
    assert insights_requests(simulator, parent) == 0
    assert insights_requests(simulator, child_sid(parent, 0)) == 1


def test_the_agent_legs_own_callback_afterwards_makes_no_second_alert(
        pipe: Pipeline, simulator: SimulatorServer, webhook_receiver: WebhookReceiver) -> None:
    """The child's own callback after its parent found it is a duplicate: one alert, one fetch."""
    parent = pipe.play("inbound-to-agent", extra=PHONE)
    pipe.drain()
    child = child_sid(parent, 0)
    assert pipe.callback(child, From="+14155550100", To="client:alice",
                         Direction="outbound-dial", ParentCallSid=parent) == 204
    pipe.drain()
    assert len(webhook_receiver.unique_ids()) == 1
    assert insights_requests(simulator, child) == 1


def test_the_agent_legs_own_callback_first_makes_no_second_alert(
        pipe: Pipeline, simulator: SimulatorServer, webhook_receiver: WebhookReceiver) -> None:
    """The child's own callback before its parent's: the parent's listing finds it known."""
    parent = simulator.add_call("inbound-to-agent")
    child = child_sid(parent, 0)
    assert pipe.callback(child, From="+14155550100", To="client:alice",
                         Direction="outbound-dial", ParentCallSid=parent) == 204
    with capture_logs() as logs:
        assert pipe.callback(parent, **PHONE) == 204
        pipe.drain()
    [delivery] = webhook_receiver.accepted()
    assert delivery.body["data"]["call"]["parent_call_sid"] == parent
    assert insights_requests(simulator, child) == 1
    assert "child_leg_known" in [line["event"] for line in logs]


def test_follow_child_legs_false_lists_nothing(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """FOLLOW_CHILD_LEGS=false: the phone leg costs no Calls request and its child no alert."""
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver, FOLLOW_CHILD_LEGS="false")
    pipe.play("inbound-to-agent", extra=PHONE)
    pipe.drain()
    assert simulator.api_requests("calls") == []
    assert webhook_receiver.accepted() == []


def test_a_failed_phone_leg_lists_no_children(
        pipe: Pipeline, simulator: SimulatorServer, webhook_receiver: WebhookReceiver) -> None:
    """A failed phone leg never connected: it is alerted from its status, with no Calls request."""
    pipe.play("inbound-to-agent", "failed", extra=PHONE, children=0)
    pipe.drain()
    assert simulator.api_requests("calls") == []
    [delivery] = webhook_receiver.accepted()
    assert [i["key"] for i in delivery.body["data"]["issues"]] == ["call/failed"]


def test_every_page_of_children_is_read_one_request_each(simulator: SimulatorServer) -> None:
    """1,001 children span two pages of 1,000: two requests, every child once, in order."""
    parent = simulator.add_call("inbound-to-agent", children=1001, events="clean")
    reader = InsightsClient(simulator.url, (simulator.account_sid, simulator.auth_token))
    legs = CallsClient(reader).child_legs(simulator.account_sid, parent)
    assert [leg.call_sid for leg in legs] == [child_sid(parent, n) for n in range(1001)]
    assert {leg.parent_call_sid for leg in legs} == {parent}
    assert [r["status"] for r in simulator.api_requests("calls")] == [200, 200]
    assert simulator.api_requests("calls")[0]["params"]["PageSize"] == "1000"


def test_an_unreachable_calls_api_is_retried_later_not_lost(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """Calls API 500s beyond the client's retries: the listing is rescheduled, then succeeds."""
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver)
    simulator.set_faults(rate_500=1.0, seed=1)
    parent = pipe.play("inbound-to-agent", extra=PHONE)
    with capture_logs() as logs:
        pipe.drain(until=lambda: bool(simulator.api_requests("calls")), timeout=10)
    assert "analysis_retry_scheduled" in [line["event"] for line in logs]
    simulator.set_faults()
    drain(redis, ahead_s=900)  # run the rescheduled listing now rather than in 15 s
    [delivery] = webhook_receiver.accepted()
    assert delivery.body["data"]["call"]["parent_call_sid"] == parent


def test_calls_client_raises_unavailable_on_persistent_5xx(simulator: SimulatorServer) -> None:
    """A Calls API that keeps answering 500 is InsightsUnavailable (retry later), never empty."""
    parent = simulator.add_call("inbound-to-agent")
    simulator.set_faults(rate_500=1.0, seed=3)
    reader = InsightsClient(simulator.url, (simulator.account_sid, simulator.auth_token),
                            sleep=lambda s: None)
    with pytest.raises(InsightsUnavailable):
        CallsClient(reader).child_legs(simulator.account_sid, parent)
