"""Drill 4: Twilio's Insights API answering 429 to half the requests and 500 to a tenth."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver
from tests.drills.harness import (
    Stack,
    Tally,
    TwilioCallbacks,
    duplicates,
    slack_counts,
    wait_until,
    webhook_counts,
)

CALLS = 12
#: Fixed, so the run is the same every time (the simulator draws faults in request order).
SEED = 4


@pytest.mark.slow
def test_insights_429_and_500_still_deliver_every_alert_once(
        make_stack: Callable[..., Stack], simulator: SimulatorServer, webhook: WebhookReceiver,
        slack: SlackStandIn, report: Callable[[Tally], None]) -> None:
    """With 50 % 429s and 10 % 500s from Insights, every call is analysed and every alert
    reaches Slack and the webhook exactly once."""
    stack = make_stack(slack=slack, webhook=webhook)
    stack.start_web()
    stack.start_worker("drill-insights")
    simulator.set_faults(rate_429=0.5, rate_500=0.1, seed=SEED)
    twilio = TwilioCallbacks(stack)
    started = time.monotonic()
    for n in range(CALLS):
        twilio.call("clean" if n % 4 == 3 else "sdk-error")
    expected = twilio.expected_alerts()
    took = wait_until(lambda: set(webhook_counts(webhook)[1]) >= expected
                      and set(slack_counts(slack)) >= expected
                      and stack.analysed() >= twilio.accepted(),
                      timeout=150, what="every alert on both sinks", processes=stack.workers)
    time.sleep(2)  # anything still in flight would land now
    requests_per_call, ids_per_call = webhook_counts(webhook)
    slack_per_call = slack_counts(slack)
    answers = [r["status"] for r in simulator.requests]
    retries = stack.worker_events("analysis_retry_scheduled")
    report(Tally(
        "insights-429-500", len(twilio.accepted()), len(expected),
        len(set(ids_per_call) & expected),
        duplicates(ids_per_call) + duplicates(slack_per_call),
        {"insights_requests": len(answers), "answered_429": answers.count(429),
         "answered_500": answers.count(500), "rescheduled_analyses": len(retries),
         "slack_messages": sum(slack_per_call.values()),
         "webhook_requests": sum(requests_per_call.values()),
         "all_delivered_after_s": round(time.monotonic() - started, 1),
         "waited_s": round(took, 1)}))
    assert twilio.accepted() == set(twilio.scenarios)
    assert set(ids_per_call) == expected and set(slack_per_call) == expected
    assert duplicates(ids_per_call) == 0 and duplicates(slack_per_call) == 0
    assert duplicates(requests_per_call) == 0
    assert answers.count(429) > 0 and answers.count(500) > 0
