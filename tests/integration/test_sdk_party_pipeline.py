"""Phone-only legs through the whole pipeline: never fetched, counted as skipped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as redis_lib
from structlog.testing import capture_logs

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import WebhookReceiver

PHONE = {"From": "+14155550100", "To": "+16505550123"}


@pytest.fixture
def pipe(redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
         webhook_receiver: WebhookReceiver) -> Iterator[Pipeline]:
    settings = pipeline_settings(redis_server.url, simulator,
                                 webhooks=[webhook_receiver.url_for("one")],
                                 secret=WEBHOOK_SECRET)
    yield Pipeline(settings, redis, simulator)


def events_requests(simulator: SimulatorServer) -> int:
    return sum(1 for r in simulator.requests if str(r["path"]).endswith("/Events"))


def test_phone_leg_is_never_fetched(pipe: Pipeline, simulator: SimulatorServer,
                                    webhook_receiver: WebhookReceiver) -> None:
    """A completed phone-to-phone leg costs no Insights request, no re-check and no alert;
    the analysis is counted as skipped and logged once."""
    with capture_logs() as logs:
        pipe.play("clean", extra=PHONE, call_type="carrier")
        pipe.drain()
    assert events_requests(simulator) == 0
    assert webhook_receiver.accepted() == []
    events = [line["event"] for line in logs]
    assert events.count("analysis_skipped") == 1
    assert "analysis_recheck_scheduled" not in events
    metrics = pipe.callbacks.client.get("/metrics").get_data(as_text=True)
    assert 'callwatch_analyses_total{outcome="skipped"} 1' in metrics


def test_failed_phone_leg_is_alerted_without_a_fetch(pipe: Pipeline, simulator: SimulatorServer,
                                                     webhook_receiver: WebhookReceiver) -> None:
    """A failed phone-to-phone leg is still alerted as call/failed, with no Insights request."""
    pipe.play("clean", "failed", extra={**PHONE, "SipResponseCode": "404"}, call_type="carrier")
    pipe.drain()
    assert events_requests(simulator) == 0
    [delivery] = webhook_receiver.accepted()
    assert [i["key"] for i in delivery.body["data"]["issues"]] == ["call/failed"]


def test_dial_client_leg_is_fetched(pipe: Pipeline, simulator: SimulatorServer,
                                    webhook_receiver: WebhookReceiver) -> None:
    """The <Dial><Client> leg (To is client:) is fetched and alerted as before."""
    pipe.play("sdk-error", extra={"From": "+14155550100", "To": "client:alice"})
    pipe.drain()
    assert events_requests(simulator) == 1
    [delivery] = webhook_receiver.accepted()
    assert delivery.body["data"]["severity"] == "error"
