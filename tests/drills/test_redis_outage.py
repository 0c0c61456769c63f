"""Drill 1: Redis stopped for 10 s while Twilio keeps posting callbacks.

Redis goes down the way a managed Redis restarts: ``SHUTDOWN SAVE``, then it comes back
on the same port with its data (a Redis that loses its data loses the analyses it had
scheduled: that is not what this drill is about). Callbacks are posted every 0.25 s
before, during and after; a refused one is retried the way a callback URL with
``#rc=3&rp=5xx`` asks Twilio to.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis as redis_lib

from devtools.redis_server import RedisServer
from devtools.standins import WebhookReceiver
from tests.drills.harness import (
    QUIET,
    Stack,
    Tally,
    TwilioCallbacks,
    duplicates,
    wait_until,
    webhook_counts,
)

OUTAGE_S = 10.0
BEFORE_S = AFTER_S = 5.0
INTERVAL_S = 0.25


def stream(twilio: TwilioCallbacks, stop: threading.Event, sent: list[str]) -> None:
    """One call every INTERVAL_S, each in its own thread (a retry must not hold the stream)."""
    threads = []
    n = 0
    while not stop.is_set():
        scenario = QUIET[0] if n % 4 == 3 else "sdk-error"
        thread = threading.Thread(target=lambda s=scenario: sent.append(twilio.call(s)))
        thread.start()
        threads.append(thread)
        n += 1
        stop.wait(INTERVAL_S)
    for thread in threads:
        thread.join()


#: How long before Redis is back a callback may still be held and then accepted.
EDGE_S = 3.0


@pytest.mark.drill
def test_redis_down_10s_callbacks_503_then_everything_analysed_once(
        make_stack: Callable[..., Stack], drill_redis: RedisServer, webhook: WebhookReceiver,
        report: Callable[[Tally], None]) -> None:
    """While Redis is down callbacks get 503; every callback accepted before, during (on
    Twilio's retry) and after is analysed, and no alert is delivered twice."""
    stack = make_stack(webhook=webhook, ANALYSIS_DELAY_SECONDS="2")
    stack.start_web()
    worker = stack.start_worker("drill-redis")
    twilio = TwilioCallbacks(stack, retries=3, retry_wait_s=4.0)
    stop, sent = threading.Event(), []
    sender = threading.Thread(target=stream, args=(twilio, stop, sent))
    sender.start()
    time.sleep(BEFORE_S)
    client = redis_lib.Redis.from_url(drill_redis.url)
    client.shutdown(save=True)
    client.close()
    drill_redis.stop()  # reaps the exited redis-server
    down_at = time.time()
    time.sleep(OUTAGE_S)
    drill_redis.start()
    up_at = time.time()
    time.sleep(AFTER_S)
    stop.set()
    sender.join()
    worker_survived = worker.proc is not None and worker.proc.poll() is None
    if not worker_survived:  # the platform's restart policy would start it again
        print("worker exited during the outage: " + _exit_reason(worker.output))
        stack.start_worker("drill-redis-restarted")
    expected = twilio.expected_alerts()
    took = wait_until(lambda: set(webhook_counts(webhook)[1]) >= expected
                      and stack.analysed() >= twilio.accepted(),
                      timeout=120, what="every accepted call analysed", processes=stack.workers)
    time.sleep(3)  # anything still in flight would land now
    requests_per_call, ids_per_call = webhook_counts(webhook)
    in_outage = [a for a in twilio.attempts if down_at <= a.at <= up_at]
    refused_first = twilio.refused_first()
    lost = set(twilio.scenarios) - twilio.accepted()
    reconnect = _first_after(stack, up_at)
    report(Tally(
        "redis-outage-10s", len(twilio.accepted()), len(expected),
        len(set(ids_per_call) & expected), duplicates(ids_per_call),
        {"calls": len(twilio.scenarios), "answers": dict(sorted(twilio.statuses().items())),
         "answered_during_outage": dict(Counter(a.status for a in in_outage)),
         "refused_first_try": len(refused_first),
         "accepted_on_retry": len(refused_first & twilio.accepted()), "never_accepted": len(lost),
         "webhook_requests": sum(requests_per_call.values()),
         "worker_survived": worker_survived,
         "worker_exit_code": None if worker_survived or worker.proc is None
         else worker.proc.returncode,
         "first_delivery_after_redis_back_s": reconnect,
         "all_analysed_after_s": round(time.time() - up_at, 1), "waited_s": round(took, 1)}))
    # A callback sent in the last seconds of the outage may be answered 204 once Redis is
    # back: redis-py retries the connection (2 s connect timeout) before the route gives
    # up. So only the attempts well inside the outage must all have been refused.
    inside = [a for a in in_outage if a.at <= up_at - EDGE_S]
    assert inside and all(a.status in (503, 0) for a in inside), inside
    assert any(a.status == 503 for a in in_outage)
    assert not lost, f"{len(lost)} calls never accepted"
    assert stack.analysed() >= twilio.accepted()
    assert set(ids_per_call) == expected and duplicates(ids_per_call) == 0


def _first_after(stack: Stack, when: float) -> float | None:
    """Seconds from ``when`` to the first alert delivered after it, from the workers' logs."""
    from datetime import datetime

    times = [datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()
             for line in stack.worker_events("alert_delivered") if "timestamp" in line]
    later = [t - when for t in times if t >= when]
    return round(min(later), 1) if later else None


def _exit_reason(output: str) -> str:
    """The last line of the traceback RQ logged when it quit on an unhandled exception."""
    for line in output.splitlines():
        if "found an unhandled exception" in line:
            try:
                trace = str(json.loads(line).get("exception", ""))
            except ValueError:
                continue
            rq_frames = [f.strip() for f in trace.splitlines()
                         if f.strip().startswith("File ") and "/rq/" in f]
            where = rq_frames[-1] if rq_frames else "?"
            return f"{trace.strip().splitlines()[-1]} (last RQ frame: {where})"
    return "no 'unhandled exception' line; see the worker's output"
