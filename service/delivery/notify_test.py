"""``callwatch notify test SINK``: one clearly marked test message, through the real path.

The test is an ordinary ``call.alert`` (so a receiver sees exactly what a real alert
looks like: signed, paced, within the sink's limits) whose summary, issue and
caller say TEST, with a fresh CallSid and alert id so no ledger or receiver takes it
for a duplicate. It goes through ``deliver_step`` like any alert, waiting for the
sink's paced turn in place (up to ``deadline_s``) and trying once: the point is to
show the receiver's answer now, not to retry for an hour. The HTTP status the
receiver answered is read from the session's response hook (the body stays with the
sink, which reads it capped). On a pager sink (PagerDuty) the test trigger is followed by
a ``resolve`` for the same key, so the test opens no page that stays open.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis as redis_lib
import requests

from service.analysis.alert import Alert, Issue, make_alert_id
from service.calls import Call
from service.decisions import Again, Done, Failed
from service.delivery.ledger import DeliveryLedger
from service.delivery.pace import Pace
from service.delivery.step import DeliveryRequest, deliver_step
from service.errors import DeliveryRejected, DeliveryRetryable
from service.http import host_of

TEST_ISSUE_KEY = "callwatch/test"
TEST_IDENTITY = "client:callwatch-test"
DEFAULT_DEADLINE_S = 30.0


@dataclass(frozen=True)
class NotifyResult:
    """What the receiver answered: ``ok``, and a line a person reads."""

    sink: str
    ok: bool
    answer: str


def marked_alert(sink: str, now: datetime, account_sid: str = "AC" + "0" * 32) -> Alert:
    """A warning that says, wherever it is shown, that it is a test and nothing went wrong."""
    call_sid = "CA" + secrets.token_hex(16)
    issue = Issue(key=TEST_ISSUE_KEY, edge=None, group="callwatch", name="test", level="WARNING",
                  severity="warning", count=1, category="other",
                  description=f"TEST MESSAGE sent by `callwatch notify test {sink}`: no call went "
                              "wrong; this shows how callwatch's alerts reach this receiver.")
    call = Call(call_sid=call_sid, account_sid=account_sid, status="completed",
                direction="outbound-api", from_=TEST_IDENTITY, to=None, duration_s=0)
    return Alert(alert_id=make_alert_id(call_sid, [TEST_ISSUE_KEY]), created_at=now, call=call,
                 issues=(issue,),
                 summary=f"TEST: callwatch test message for sink {sink} "
                         f"({now:%Y-%m-%d %H:%M} UTC); no call went wrong")


def notify_test(name: str, *, sink: Any, redis: redis_lib.Redis, session: requests.Session,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                deadline_s: float = DEFAULT_DEADLINE_S,
                sleep: Callable[[float], None] = time.sleep) -> NotifyResult:
    """Send one test message to ``sink`` (named ``name``) and report the receiver's answer.
    ``session`` is the one the sink posts with (its answers are watched)."""
    sink = getattr(sink, "inner", sink)  # a digest sink is tested on its receiver
    answers: list[str] = []

    def watch(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        answers.append(f"{host_of(response.url)} answered HTTP {response.status_code}")

    session.hooks["response"].append(watch)
    try:
        return _send(name, sink, redis=redis, clock=clock, deadline_s=deadline_s, sleep=sleep,
                     answers=answers)
    finally:
        session.hooks["response"].remove(watch)


def _send(name: str, sink: Any, *, redis: redis_lib.Redis, clock: Callable[[], datetime],
          deadline_s: float, sleep: Callable[[float], None], answers: list[str]) -> NotifyResult:
    ledger = DeliveryLedger(redis)
    # The pace waits the last part of a turn in place: with the caller's sleep, like the rest.
    pace = Pace(redis, interval_s=sink.pace_s, sleep=sleep) if sink.pace_s else None
    request = DeliveryRequest(name, marked_alert(name, clock()).to_envelope())
    give_up = time.monotonic() + deadline_s
    while True:
        decision = deliver_step(request, sink=sink, ledger=ledger, pace=pace, retry_s=())
        heard = answers[-1] if answers else None
        if isinstance(decision, Done):
            answer = f"delivered: {heard or 'the receiver took it'}"
            return _resolved(name, sink, request.message_id, answer)
        if isinstance(decision, Failed):
            said = f" ({heard})" if heard and heard not in decision.message else ""
            return NotifyResult(name, False, f"{decision.reason}: {decision.message}{said}")
        assert isinstance(decision, Again)
        if time.monotonic() + decision.after_s > give_up:
            return NotifyResult(name, False, f"not sent: the sink's turn is {decision.after_s:.0f} s "
                                             "away (paced or in flight); try again shortly")
        sleep(decision.after_s)
        request = DeliveryRequest(name, request.message, attempt=int(decision.state["attempt"]),
                                  booked=bool(decision.state["booked"]))


def _resolved(name: str, sink: Any, dedup_key: str, answer: str) -> NotifyResult:
    """A pager sink's test trigger resolved at once (same key); other sinks as they are."""
    resolve = getattr(sink, "resolve", None)
    if getattr(sink, "kind", None) != "pager" or not callable(resolve):
        return NotifyResult(name, True, answer)
    try:
        resolve(dedup_key)
    except (DeliveryRetryable, DeliveryRejected) as error:
        return NotifyResult(name, False, f"{answer}; the resolve for {dedup_key} failed ({error}): "
                                         "resolve the test incident in PagerDuty")
    return NotifyResult(name, True, f"{answer}; then resolved (dedup key {dedup_key}), so no "
                                    "page stays open")
