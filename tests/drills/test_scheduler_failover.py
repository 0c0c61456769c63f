"""Drill 3: the worker holding RQ's scheduler lock is killed while analyses are scheduled."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import pytest
import redis as redis_lib

from devtools.standins import WebhookReceiver
from tests.drills.harness import Stack, Tally, TwilioCallbacks, duplicates, wait_until, webhook_counts

DELAY_S = 5
CALLS = 10


@pytest.mark.drill
def test_scheduler_holder_killed_scheduled_analyses_still_run(
        make_stack: Callable[..., Stack], webhook: WebhookReceiver,
        report: Callable[[Tally], None]) -> None:
    """SIGKILL of the worker holding the scheduler lock: another worker takes the lock over
    and every analysis scheduled before or after the kill runs, once, late by a bounded time."""
    stack = make_stack(webhook=webhook, ANALYSIS_DELAY_SECONDS=str(DELAY_S))
    stack.start_web()
    holder = stack.start_worker("drill-sched-a")
    lock = redis_lib.Redis.from_url(stack.env["REDIS_URL"])
    key = "rq:scheduler-lock:analysis"
    wait_until(lambda: lock.get(key) is not None, 20, "worker a's scheduler to take the lock",
               processes=stack.workers)
    time.sleep(2)
    owner = lock.get(key)  # the only worker so far: worker a's scheduler
    other = stack.start_worker("drill-sched-b")
    twilio = TwilioCallbacks(stack)
    due: dict[str, float] = {}
    for n in range(CALLS):
        sid = twilio.call("sdk-error")
        due[sid] = time.time() + DELAY_S
        if n == CALLS // 2 - 1:
            assert lock.get(key) == owner, "worker b took the lock before the kill"
            holder.kill_tree()
            killed_at = time.time()
    expected = twilio.expected_alerts()
    taken_over: list[float] = []

    def all_delivered() -> bool:
        if not taken_over and lock.get(key) not in (None, owner):
            taken_over.append(time.time())  # worker b's scheduler holds the lock now
        return set(webhook_counts(webhook)[1]) >= expected

    wait_until(all_delivered, 240, "every scheduled analysis to run", processes=[other])
    time.sleep(2)
    requests_per_call, ids_per_call = webhook_counts(webhook)
    started = _analysis_started(other)
    late = {sid: started[sid] - due[sid] for sid in due if sid in started}
    lock.close()
    report(Tally(
        "scheduler-holder-killed", len(twilio.accepted()), len(expected),
        len(set(ids_per_call) & expected), duplicates(ids_per_call),
        {"lock_taken_over_after_kill_s": round(taken_over[0] - killed_at, 1) if taken_over else None,
         "max_late_s": round(max(late.values()), 1), "min_late_s": round(min(late.values()), 1),
         "webhook_requests": sum(requests_per_call.values())}))
    assert set(ids_per_call) == expected and duplicates(requests_per_call) == 0
    assert all(sid in started for sid in due)


def _ts(line: dict) -> float:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()


def _analysis_started(worker: object) -> dict[str, float]:
    """When each call's analysis started in ``worker`` (first time)."""
    found: dict[str, float] = {}
    for line in worker.log_lines():  # type: ignore[attr-defined]
        if line.get("event") == "analysis_started" and line.get("call_sid"):
            found.setdefault(str(line["call_sid"]), _ts(line))
    return found
