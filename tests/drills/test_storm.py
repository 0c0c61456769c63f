"""Drill 7: a storm. 200 calls fail with one error code within a minute, 30 unrelated calls
alert meanwhile, one of two workers is SIGKILLed mid-storm: the channel gets an incident,
not a flood, and nothing is lost or sent twice."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from devtools.standins import SlackStandIn, WebhookReceiver
from tests.drills.harness import CALL_SID, Stack, Tally, TwilioCallbacks, duplicates, wait_until

STORM_CALLS = 200
STORM_S = 55.0
UNRELATED = 30
KILL_AT_S = 25.0
#: The unrelated alerts must reach Slack within this many seconds of their callback.
ON_TIME_S = 10.0
STORM = {"calls": 10, "within_s": 120, "group_by": ["issue"], "update_every_s": 25,
         "resolve_after_s": 30}
INCIDENT_TEXT = re.compile(r"callwatch Incident (opened|updated|resolved)")


def _incident_messages(slack: SlackStandIn) -> list[tuple[str, float]]:
    """(event, received at) of the incident messages Slack showed."""
    found = []
    for message in slack.accepted():
        matched = INCIDENT_TEXT.search(str(message.payload.get("text", "")))
        if matched:
            found.append((matched.group(1), message.received_at))
    return found


def _slack_alerts(slack: SlackStandIn) -> dict[str, list[float]]:
    """Per CallSid, when its per-call alert was shown in Slack."""
    shown: dict[str, list[float]] = {}
    for message in slack.accepted():
        text = str(message.payload.get("text", ""))
        found = CALL_SID.search(text)
        if found and not INCIDENT_TEXT.search(text):
            shown.setdefault(found.group(), []).append(message.received_at)
    return shown


def _webhook_alerts(webhook: WebhookReceiver) -> tuple[Counter[str], Counter[str]]:
    """(``call.alert`` webhook-ids per CallSid, accepted requests per incident webhook-id)."""
    ids: dict[str, set[str]] = {}
    events: Counter[str] = Counter()
    for delivery in webhook.accepted():
        if delivery.body.get("type") == "call.alert":
            sid = delivery.body["data"]["call"]["call_sid"]
            ids.setdefault(sid, set()).add(str(delivery.webhook_id))
        else:
            events[str(delivery.webhook_id)] += 1
    return Counter({sid: len(v) for sid, v in ids.items()}), events


@pytest.mark.drill
def test_storm_of_200_calls_becomes_one_incident(
        make_stack: Callable[..., Stack], slack: SlackStandIn, webhook: WebhookReceiver,
        report: Callable[[Tally], None]) -> None:
    """At most 15 Slack messages for the storm and no 429; the unrelated alerts on time;
    every CallSid once at the webhook; folded plus sent one by one is 200; no duplicates."""
    stack = make_stack(slack=slack, webhook=webhook, ANALYSIS_DELAY_SECONDS="0",
                       CALLWATCH_CONFIG=json.dumps({"storm": STORM}))
    stack.start_web()
    for n in range(2):
        stack.start_worker(f"drill-storm-{n}")
    storm, unrelated = TwilioCallbacks(stack), TwilioCallbacks(stack)
    due: dict[str, float] = {}
    started = time.time()

    def play_storm() -> None:
        for i in range(STORM_CALLS):
            time.sleep(max(0.0, started + i * STORM_S / STORM_CALLS - time.time()))
            storm.call("sdk-error")

    def play_unrelated() -> None:
        for i in range(UNRELATED):
            time.sleep(max(0.0, started + 2 + i * (STORM_S - 4) / UNRELATED - time.time()))
            sid = unrelated.call("sdk-error", code=32000 + i)
            due[sid] = time.time()

    senders = [threading.Thread(target=play_storm), threading.Thread(target=play_unrelated)]
    for sender in senders:
        sender.start()
    time.sleep(max(0.0, started + KILL_AT_S - time.time()))
    stack.workers[0].kill_tree()
    killed_at = time.time()
    for sender in senders:
        sender.join()
    storm_sids, unrelated_sids = storm.expected_alerts(), unrelated.expected_alerts()
    wait_until(lambda: set(_webhook_alerts(webhook)[0]) >= storm_sids | unrelated_sids
               and set(_slack_alerts(slack)) >= unrelated_sids
               and any(e == "resolved" for e, _ in _incident_messages(slack)),
               timeout=400, what="every alert at the webhook and the incident resolved in Slack",
               processes=stack.workers[1:],
               redis_url=stack.redis.url)
    time.sleep(3)  # anything still in flight would land now

    shown = _slack_alerts(slack)
    incident_messages = _incident_messages(slack)
    storm_shown = {sid: at for sid, at in shown.items() if sid in storm_sids}
    webhook_ids, event_requests = _webhook_alerts(webhook)
    resolved = [d.body["data"] for d in webhook.accepted() if d.body.get("type") == "incident.resolved"]
    opened_ids = {d.body["data"]["incident_id"] for d in webhook.accepted()
                  if d.body.get("type") == "incident.opened"}
    folded = resolved[0]["calls"] if resolved else 0
    late = {sid[-6:]: round(min(shown[sid]) - due[sid], 1) for sid in unrelated_sids if sid in shown}
    opened_at = min((at for e, at in incident_messages if e == "opened"), default=0.0)
    opened_at_webhook = min((d.received_at for d in webhook.accepted()
                             if d.body.get("type") == "incident.opened"), default=0.0)
    slack_dups = duplicates(Counter({sid: len(v) for sid, v in shown.items()}))
    report(Tally(
        "storm-200", len(storm.accepted()) + len(unrelated.accepted()),
        len(storm_sids) + len(unrelated_sids), len(set(webhook_ids) & (storm_sids | unrelated_sids)),
        duplicates(webhook_ids) + slack_dups + duplicates(event_requests),
        {"slack_messages_storm": len(storm_shown) + len(incident_messages),
         "incident_messages": Counter(e for e, _ in incident_messages),
         "incidents_opened": len(opened_ids), "calls_folded": folded,
         "storm_sent_one_by_one": len(storm_shown),
         "per_call_webhooks": sum(webhook_ids.values()),
         "slack_429": sum(1 for m in slack.messages if m.status == 429),
         "first_call_to_opened_s": {"slack": round(opened_at - started, 1),
                                    "webhook": round(opened_at_webhook - started, 1)},
         "unrelated_max_late_s": max(late.values(), default=None),
         "killed_at_s": round(killed_at - started, 1),
         "incident_events_at_webhook": len(event_requests)}))
    assert len(storm_sids) == STORM_CALLS and len(unrelated_sids) == UNRELATED
    assert len(storm_shown) + len(incident_messages) <= 15
    assert not any(m.status == 429 for m in slack.messages)
    assert set(webhook_ids) >= storm_sids | unrelated_sids and duplicates(webhook_ids) == 0
    assert len(opened_ids) == 1 and len(resolved) == 1
    assert folded + len(storm_shown) == STORM_CALLS
    assert slack_dups == 0 and duplicates(event_requests) == 0
    assert [e for e, _ in incident_messages].count("opened") == 1
    assert [e for e, _ in incident_messages][-1] == "resolved"
    assert set(late) == {sid[-6:] for sid in unrelated_sids} and max(late.values()) <= ON_TIME_S
