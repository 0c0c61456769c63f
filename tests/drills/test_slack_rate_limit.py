"""Drill 5: Slack answers 429 to everything for a minute in the middle of a 200-alert burst."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib
from werkzeug.wrappers import Request

from devtools.standins import SlackMessage, SlackStandIn
from tests.drills.harness import Stack, Tally, TwilioCallbacks, duplicates, slack_counts, wait_until

ALERTS = 200
WINDOW_S = 60.0
RETRY_AFTER_S = 10
WORKERS = 2


class RateLimitedSlack(SlackStandIn):
    """A Slack stand-in that answers every message 429 (with Retry-After) during a window."""

    def __init__(self, *, retry_after_s: int, **options: float) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s
        self.window = (0.0, 0.0)

    def rate_limit_for(self, seconds: float) -> None:
        start = time.time()
        self.window = (start, start + seconds)

    def _handle(self, request: Request) -> tuple[int, str, dict[str, str]]:
        now = time.time()
        if self.window[0] <= now < self.window[1] and request.method == "POST":
            try:
                payload = json.loads(request.get_data())
            except ValueError:
                payload = None
            with self._lock:
                self.messages.append(SlackMessage(request.path, payload, 429, now))
            return 429, "rate_limited", {"Retry-After": str(self.retry_after_s)}
        return super()._handle(request)


@pytest.fixture
def limited_slack() -> Iterator[RateLimitedSlack]:
    with RateLimitedSlack(retry_after_s=RETRY_AFTER_S, min_interval_s=1.0) as stand_in:
        yield stand_in


@pytest.mark.drill
def test_slack_429_for_a_minute_during_200_alerts(
        make_stack: Callable[..., Stack], limited_slack: RateLimitedSlack,
        report: Callable[[Tally], None]) -> None:
    """200 alerts, Slack refusing everything for 60 s after the tenth: all 200 arrive once,
    never two within a second, none given up."""
    slack = limited_slack
    stack = make_stack(slack=slack, ANALYSIS_DELAY_SECONDS="0", CALLWATCH_CONFIG='{"storm": false}')
    stack.start_web()
    for n in range(WORKERS):
        stack.start_worker(f"drill-slack-{n}")
    twilio = TwilioCallbacks(stack)
    started = time.time()
    for _ in range(ALERTS):
        twilio.call("sdk-error")
    expected = twilio.expected_alerts()
    wait_until(lambda: len(slack.accepted()) >= 10, 240, "the first ten messages",
               processes=stack.workers)
    slack.rate_limit_for(WINDOW_S)
    wait_until(lambda: set(slack_counts(slack)) >= expected, 900, "all 200 alerts in Slack",
               processes=stack.workers)
    time.sleep(3)
    per_call = slack_counts(slack)
    accepted = sorted(m.received_at for m in slack.accepted())
    in_window = [m for m in slack.messages if slack.window[0] <= m.received_at < slack.window[1]]
    given_up = stack.worker_events("alert_delivery_failed")
    client = redis_lib.Redis.from_url(stack.env["REDIS_URL"])
    keys = client.dbsize()
    client.close()
    report(Tally(
        "slack-429-window", len(twilio.accepted()), len(expected),
        len(set(per_call) & expected), duplicates(per_call),
        {"requests_during_429_window": len(in_window),
         "answered_429_total": sum(1 for m in slack.messages if m.status == 429),
         "min_gap_s": round(min(b - a for a, b in itertools.pairwise(accepted)), 2),
         "given_up": len(given_up), "redis_keys_after": keys,
         "burst_delivered_in_s": round(accepted[-1] - started, 1),
         "after_window_s": round(accepted[-1] - slack.window[1], 1)}))
    assert set(per_call) == expected and duplicates(per_call) == 0
    assert min(b - a for a, b in itertools.pairwise(accepted)) >= 0.9
    assert not given_up
