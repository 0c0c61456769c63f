"""Drill 7: a webhook receiver hangs past its timeout and Slack answers 429 during 100 alerts."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from werkzeug.wrappers import Request

from devtools.standins import SlackMessage, SlackStandIn, WebhookReceiver
from tests.drills.harness import (
    Stack,
    Tally,
    TwilioCallbacks,
    duplicates,
    slack_counts,
    wait_until,
    webhook_counts,
)

ALERTS = 100
#: Longer than the webhook sink's 10 s read timeout: every attempt meanwhile times out.
HANG_S = 15.0
#: How long the webhook receiver hangs before it recovers.
HANG_WINDOW_S = 40.0
#: Every third Slack message is refused with this Retry-After.
SLACK_429_EVERY = 3
SLACK_RETRY_AFTER_S = 2


class RefusingSlack(SlackStandIn):
    """A Slack stand-in that also answers every third message 429 (``Retry-After: 2``)."""

    def __init__(self, **options: float) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._posts = itertools.count(1)

    def _handle(self, request: Request) -> tuple[int, str, dict[str, str]]:
        if request.method == "POST" and next(self._posts) % SLACK_429_EVERY == 0:
            with self._lock:
                self.messages.append(SlackMessage(request.path, None, 429, time.time()))
            return 429, "rate_limited", {"Retry-After": str(SLACK_RETRY_AFTER_S)}
        return super()._handle(request)


@pytest.fixture
def refusing_slack() -> Iterator[RefusingSlack]:
    with RefusingSlack(min_interval_s=1.0) as stand_in:
        yield stand_in


@pytest.mark.drill
def test_a_hanging_webhook_does_not_delay_slack(
        make_stack: Callable[..., Stack], webhook: WebhookReceiver, refusing_slack: RefusingSlack,
        report: Callable[[Tally], None]) -> None:
    """100 alerts through one worker as the Procfile starts it, the webhook hanging 15 s per
    request for 40 s: Slack keeps its one-a-second pace (no gap of more than a few seconds),
    every alert reaches both sinks, none twice."""
    slack = refusing_slack
    # storm grouping off: 100 alike calls are meant to reach Slack one by one here
    stack = make_stack(slack=slack, webhook=webhook, ANALYSIS_DELAY_SECONDS="0",
                       CALLWATCH_CONFIG='{"storm": false}')
    stack.start_web()
    stack.start_worker("drill-slow-sink")
    webhook.hold_s = HANG_S
    recovered = threading.Timer(HANG_WINDOW_S, lambda: setattr(webhook, "hold_s", 0.0))
    recovered.start()
    try:
        twilio = TwilioCallbacks(stack)
        started = time.time()
        for _ in range(ALERTS):
            twilio.call("sdk-error")
        expected = twilio.expected_alerts()
        wait_until(lambda: set(slack_counts(slack)) >= expected, 600, "every alert in Slack",
                   processes=stack.workers, redis_url=stack.redis.url)
        slack_done = time.time()
        wait_until(lambda: set(webhook_counts(webhook)[1]) >= expected, 600,
                   "every alert at the webhook", processes=stack.workers,
                   redis_url=stack.redis.url)
        webhook_done = time.time()
    finally:
        recovered.cancel()
    time.sleep(3)
    per_call = slack_counts(slack)
    requests_per_call, ids_per_call = webhook_counts(webhook)
    accepted = sorted(m.received_at for m in slack.accepted())
    gaps = [b - a for a, b in itertools.pairwise([started, *accepted])]
    in_hang = [b - a for a, b in itertools.pairwise([started, *accepted])
               if b <= started + HANG_WINDOW_S + HANG_S]
    given_up = stack.worker_events("alert_delivery_failed")
    report(Tally(
        "slow-sink", len(twilio.accepted()), len(expected) * 2,
        len(set(per_call) & expected) + len(set(ids_per_call) & expected),
        duplicates(per_call) + duplicates(ids_per_call),
        {"slack_max_gap_s": round(max(gaps), 1),
         "slack_max_gap_while_webhook_hangs_s": round(max(in_hang), 1) if in_hang else None,
         "slack_answered_429": sum(1 for m in slack.messages if m.status == 429),
         "slack_all_delivered_after_s": round(slack_done - started, 1),
         "webhook_all_delivered_after_s": round(webhook_done - started, 1),
         "webhook_requests": sum(requests_per_call.values()),
         "webhook_timeouts_repeated": sum(requests_per_call.values()) - len(requests_per_call),
         "given_up": len(given_up)}))
    assert set(per_call) == expected and duplicates(per_call) == 0
    assert set(ids_per_call) == expected and duplicates(ids_per_call) == 0
    assert not given_up
    assert max(gaps) <= 6.0, f"Slack waited {max(gaps):.1f} s between two messages"
