"""Drill 2: workers SIGKILLed (whole process tree) during analysis and during delivery."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

import pytest

from devtools.processes import worker
from devtools.standins import SlackStandIn, WebhookReceiver
from tests.drills.harness import (
    CALL_SID,
    Stack,
    Tally,
    TwilioCallbacks,
    duplicates,
    slack_counts,
    wait_until,
    webhook_counts,
)

#: The Events API holds each answer this long for the calls killed during analysis.
SLOW_S = 6
BACKGROUND_CALLS = 6
#: The webhook holds its answers this long while a kill mid-delivery is staged: under the
#: sink's 10 s read timeout, so only the killed request goes out twice.
HOLD_S = 8


@pytest.mark.drill
def test_three_kills_every_alert_delivered_exactly_once(
        make_stack: Callable[..., Stack], webhook: WebhookReceiver, slack: SlackStandIn,
        report: Callable[[Tally], None]) -> None:
    """Kill a worker mid-analysis, the next mid-delivery, the next mid-analysis again: every
    alert still reaches Slack once and the webhook under one webhook-id."""
    stack = make_stack(webhook=webhook, slack=slack, ANALYSIS_DELAY_SECONDS="0")
    stack.start_web()
    twilio = TwilioCallbacks(stack)
    kills: dict[str, tuple[str, float]] = {}  # call_sid -> (what was running, killed at)

    def kill_during_analysis(name: str) -> None:
        victim = stack.start_worker(name)
        sid = twilio.call("slow", delay_s=SLOW_S, events="sdk-error")
        victim.wait_for(lambda: any(line.get("call_sid") == sid
                                    for line in victim.events("analysis_started")), timeout=60)
        time.sleep(1)  # inside the Events API request
        victim.kill_tree()
        kills[sid] = ("analysis", time.time())

    def kill_during_delivery(name: str) -> None:
        victim = stack.start_worker(name)
        webhook.hold_s = HOLD_S
        sid = twilio.call("sdk-error")
        victim.wait_for(lambda: any(d.body["data"]["call"]["call_sid"] == sid
                                    for d in webhook.deliveries), timeout=60)
        victim.kill_tree()  # the receiver has the request; the ledger has no mark
        kills[sid] = ("webhook delivery", time.time())
        webhook.hold_s = 0

    for _ in range(BACKGROUND_CALLS // 2):
        twilio.call("sdk-error")
    kill_during_analysis("drill-kill-1")
    kill_during_delivery("drill-kill-2")
    for _ in range(BACKGROUND_CALLS - BACKGROUND_CALLS // 2):
        twilio.call("sdk-error")
    kill_during_analysis("drill-kill-3")
    last_kill = time.time()
    stack.start_worker("drill-survivor")
    expected = twilio.expected_alerts()
    wait_until(lambda: set(webhook_counts(webhook)[1]) >= expected
               and set(slack_counts(slack)) >= expected
               and all(_first_accepted(webhook, sid, after=at) for sid, (_, at) in kills.items()),
               timeout=400, what="every alert on both sinks", processes=stack.workers[-1:],
               redis_url=stack.redis.url)
    time.sleep(3)  # anything still in flight would land now
    requests_per_call, ids_per_call = webhook_counts(webhook)
    slack_per_call = slack_counts(slack)
    recovered = {sid: _first_accepted(webhook, sid, after=at) - at for sid, (_, at) in kills.items()}
    report(Tally(
        "worker-sigkill-x3", len(twilio.accepted()), len(expected),
        len(set(ids_per_call) & set(slack_per_call) & expected),
        duplicates(ids_per_call) + duplicates(slack_per_call),
        {"kills": len(kills),
         "recovery_s": [f"{what}: {recovered[sid]:.1f}" for sid, (what, _) in kills.items()],
         "all_delivered_after_last_kill_s": round(_last_accepted(webhook, slack) - last_kill, 1),
         "webhook_requests": sum(requests_per_call.values()),
         "webhook_requests_repeated": duplicates(requests_per_call),
         "repeats": {f"{sid[-6:]}({kills.get(sid, ('background',))[0]})": n
                     for sid, n in requests_per_call.items() if n > 1},
         "slack_messages": sum(slack_per_call.values())}))
    assert set(ids_per_call) == expected and set(slack_per_call) == expected
    assert duplicates(ids_per_call) == 0 and duplicates(slack_per_call) == 0
    assert all(d.verified for d in webhook.accepted())


def _first_accepted(webhook: WebhookReceiver, sid: str, *, after: float) -> float:
    """When the webhook first took this call's alert after ``after`` (0.0: not yet)."""
    return min((d.received_at for d in webhook.accepted()
                if d.body["data"]["call"]["call_sid"] == sid and d.received_at >= after), default=0.0)


def _last_accepted(webhook: WebhookReceiver, slack: SlackStandIn) -> float:
    return max([d.received_at for d in webhook.accepted()] + [m.received_at for m in slack.accepted()])


#: The routing file of the PagerDuty/Teams/email drill: every alert to the three sinks.
ROUTED_SINKS = """
sinks:
  oncall:   {type: pagerduty, routing_key: drill-routing-key}
  teams:    {type: teams, url: "%s"}
  ops-mail: {type: email, to: [voice-ops@example.com]}
default: [oncall, teams, ops-mail]
"""


@pytest.mark.drill
def test_kills_mid_delivery_to_pagerduty_teams_and_email(
        make_stack: Callable[..., Stack], report: Callable[[Tally], None]) -> None:
    """Kill a worker mid-request to PagerDuty, then to Teams, then mid-DATA to the mail server:
    each alert still opens one PagerDuty alert (one dedup_key) and one email (one Message-ID),
    and the survivor finishes every delivery."""
    from devtools.pagerduty_standin import PagerDutyStandIn
    from devtools.smtp_standin import SmtpStandIn
    from devtools.teams_standin import TeamsStandIn

    with PagerDutyStandIn() as pd, TeamsStandIn() as teams, SmtpStandIn() as smtp:
        stack = make_stack(ANALYSIS_DELAY_SECONDS="0", CALLWATCH_CONFIG=ROUTED_SINKS % teams.url,
                           PAGERDUTY_EVENTS_URL=pd.url, SMTP_URL=smtp.url,
                           ALERT_EMAIL_FROM="callwatch@example.com")
        stack.start_web()
        twilio = TwilioCallbacks(stack)
        kills: dict[str, tuple[str, float]] = {}  # call_sid -> (sink, killed at)

        def pd_calls(after: float = 0.0) -> set[str]:
            return {str(e.body["payload"]["component"]) for e in pd.events if e.received_at >= after}

        def teams_calls(after: float = 0.0) -> set[str]:
            return {sid for p in teams.posts if p.received_at >= after
                    for sid in CALL_SID.findall(json.dumps(p.body))}

        def mail_calls(after: float = 0.0) -> set[str]:
            return {sid for at, m in smtp.arrived if at >= after
                    for sid in CALL_SID.findall(str(m["Subject"]))}

        seen_by = {"pagerduty": pd_calls, "teams": teams_calls, "email": mail_calls}

        for name, server, seen in (("pagerduty", pd, pd_calls), ("teams", teams, teams_calls),
                                   ("email", smtp, mail_calls)):
            # One worker process: a kill then cuts exactly one request short. With several,
            # every delivery in flight in the killed container may reach its receiver twice
            # (the same window, once per request in flight).
            victim = worker(stack.env, "--name", f"drill-kill-{name}", "--concurrency", "1").start()
            stack.workers.append(victim)
            victim.wait_for(lambda v=victim: bool(v.events("worker_starting")), timeout=30)
            server.hold_s = HOLD_S
            sid = twilio.call("sdk-error")
            victim.wait_for(lambda sid=sid, seen=seen: sid in seen(), timeout=60)
            victim.kill_tree()  # the receiver has the request; the ledger has no mark
            kills[sid] = (name, time.time())
            server.hold_s = 0
            twilio.call("sdk-error")
        stack.start_worker("drill-survivor")
        expected = twilio.expected_alerts()

        def per_call() -> tuple[Counter[str], Counter[str], Counter[str], Counter[str], Counter[str]]:
            dedup: dict[str, set[str]] = {}
            triggers: Counter[str] = Counter()
            for event in pd.accepted():
                call = str(event.body["payload"]["component"])
                triggers[call] += 1
                dedup.setdefault(call, set()).add(str(event.dedup_key))
            cards: Counter[str] = Counter(sid for p in teams.accepted()
                                          for sid in set(CALL_SID.findall(json.dumps(p.body))))
            ids: dict[str, set[str]] = {}
            mails: Counter[str] = Counter()
            for mail in smtp.accepted():
                for sid in set(CALL_SID.findall(str(mail.message["Subject"]))):
                    mails[sid] += 1
                    ids.setdefault(sid, set()).add(str(mail.message["Message-ID"]))
            return (Counter({k: len(v) for k, v in dedup.items()}), triggers, cards,
                    Counter({k: len(v) for k, v in ids.items()}), mails)

        # Done when every alert is everywhere, and each killed delivery was sent again after
        # its kill (the survivor's send, not the dead worker's held request).
        wait_until(lambda: all(set(c) >= expected for c in per_call())
                   and all(sid in seen_by[name](after=at) for sid, (name, at) in kills.items()),
                   timeout=400, what="every alert at PagerDuty, Teams and the mail server",
                   processes=stack.workers[-1:],
                   redis_url=stack.redis.url)
        time.sleep(3)  # anything still in flight would land now
        dedup_keys, triggers, cards, message_ids, mails = per_call()
        report(Tally(
            "worker-sigkill-pagerduty-teams-email", len(twilio.accepted()), len(expected),
            len(set(dedup_keys) & set(cards) & set(message_ids) & expected),
            duplicates(dedup_keys) + duplicates(message_ids),
            {"kills": ",".join(name for name, _ in kills.values()),
             "pd_triggers": sum(triggers.values()), "pd_triggers_repeated": duplicates(triggers),
             "teams_cards": sum(cards.values()), "teams_cards_repeated": duplicates(cards),
             "emails": sum(mails.values()), "emails_repeated": duplicates(mails)}))
        assert set(dedup_keys) == expected and set(message_ids) == expected
        assert duplicates(dedup_keys) == 0 and duplicates(message_ids) == 0
        # A receiver without a de-duplication key (Teams) may show the killed call twice:
        # the request had reached it when the worker died. Never any other call.
        assert set(cards) == expected
        assert {sid for sid, n in cards.items() if n > 1} <= set(kills)
