"""Digests against real Redis and the Slack/Teams/SMTP stand-ins, with a fake clock: one
summary per sink and period across two workers and a restart, nothing for an empty
period, retried after a 5xx, and within Slack's and Teams' limits."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib

from devtools.sample_alerts import sample_alert
from devtools.smtp_standin import SmtpStandIn
from devtools.standins import SlackStandIn, slack_payload_problem
from devtools.teams_standin import TeamsStandIn
from service.analysis.alert import Alert
from service.calls import Call
from service.delivery.digests.periods import DigestPolicy, current_period, last_finished
from service.delivery.digests.sending import DigestingSink, DigestSink
from service.delivery.digests.store import DigestStore
from service.delivery.incidents.store import IncidentStore
from service.delivery.pace import Pace
from service.delivery.sinks.email import EmailSink, SmtpServer
from service.delivery.sinks.slack import SlackSink
from service.delivery.sinks.teams import TeamsSink, teams_digest_card
from workers.digest_clock import DigestClock

HOURLY = DigestPolicy(every="hour", minute=0, tz="UTC")
T10 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def alert(n: int, *, agent: str = "alice", issues: int = 2) -> Alert:
    """Alert ``n`` of ``agent``: its own call."""
    base = sample_alert(call_sid=f"CA{n:032x}", issues=issues)
    call: Call = replace(base.call, from_=f"client:{agent}")
    return Alert(alert_id=f"alr_{n}", created_at=base.created_at, call=call, issues=base.issues,
                 client=base.client)


def workers(redis_server_url: str, sink: DigestSink, clock: Clock, n: int = 2) -> list[DigestClock]:
    """``n`` workers' digest clocks, each with its own Redis connection."""
    return [DigestClock(redis_lib.Redis.from_url(redis_server_url), [sink], clock=clock)
            for _ in range(n)]


def test_one_digest_per_period_across_two_workers_and_a_restart(
        redis_server, redis: redis_lib.Redis, slack_receiver: SlackStandIn) -> None:
    """Two workers ticking at once, before, at and after the period's end, and a restarted
    one, send the hour's digest once, with what the hour held; empty hours send nothing."""
    clock = Clock(T10 + timedelta(minutes=20))
    slack = SlackSink(slack_receiver.url)
    digesting = DigestingSink(slack, HOURLY, DigestStore(redis), clock)
    for _ in range(12):
        IncidentStore(redis).count_analysed(clock().timestamp())
    for n, agent in enumerate(["alice", "alice", "bob"]):
        digesting.send(alert(n, agent=agent))
    digesting.send(alert(0))  # a retried delivery job: counted once
    sink = DigestSink("slack", HOURLY, slack.send_digest)
    pair = workers(redis_server.url, sink, clock)
    clock.now = T10 + timedelta(minutes=59)
    # 08:00-09:00 and 09:00-10:00 held nothing: marked done, nothing sent
    assert [w.tick() for w in pair] == [[("slack", "empty"), ("slack", "empty")], []]
    clock.now = T10 + timedelta(hours=1, seconds=5)
    results: list[list[tuple[str, str]]] = []
    threads = [threading.Thread(target=lambda w=w: results.append(w.tick())) for w in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [[], [("slack", "sent")]]
    clock.now = T10 + timedelta(hours=1, minutes=30)
    assert [w.tick() for w in pair] + [workers(redis_server.url, sink, clock, 1)[0].tick()] == [[], [], []]
    clock.now = T10 + timedelta(hours=2, seconds=1)
    assert [w.tick() for w in pair] == [[("slack", "empty")], []]
    [digest] = slack_receiver.accepted()
    assert slack_payload_problem(digest.payload) is None
    text = str(digest.payload)
    assert "3 alerts, 12 calls analysed" in digest.payload["text"]
    assert "Mon 7 Dec 10:00 → Mon 7 Dec 11:00 UTC" in digest.payload["text"]
    assert "alice (2), bob (1)" in text and "US (3)" in text
    assert "sdk_edge/connection/error/31000 (3)" in text


def test_a_digest_refused_for_now_is_sent_at_the_next_tick(
        redis_server, redis: redis_lib.Redis, slack_receiver: SlackStandIn) -> None:
    """Slack's 503 leaves the period unsent, and so does Slack's pace taken by an alert
    that just went; a later tick sends it, once."""
    clock = Clock(T10 + timedelta(minutes=5))
    slack = SlackSink(slack_receiver.url)
    DigestingSink(slack, HOURLY, DigestStore(redis), clock).send(alert(1))
    sink = DigestSink("slack", HOURLY, slack.send_digest, pace_s=slack.pace_s)
    [worker] = workers(redis_server.url, sink, clock, 1)
    clock.now = T10 + timedelta(hours=1)
    slack_receiver.script([(503, "busy")])
    assert worker.tick() == [("slack", "empty"), ("slack", "retry")]
    Pace(redis, interval_s=slack.pace_s or 1.0).reserve("slack")  # an alert's send, just now
    assert worker.tick() == [("slack", "paced")]
    time.sleep(slack.pace_s or 1.0)
    assert worker.tick() == [("slack", "sent")]
    assert worker.tick() == []
    assert len(slack_receiver.accepted()) == 1


def test_daily_digest_follows_the_time_zone_wall_clock(redis: redis_lib.Redis,
                                                      smtp: SmtpStandIn) -> None:
    """A daily 08:00 Europe/Dublin digest covers the local day (23 h across the spring
    change) and arrives by e-mail once, its Message-ID naming the sink and period."""
    policy = DigestPolicy(every="day", hour=8, minute=0, tz="Europe/Dublin")
    clock = Clock(datetime(2026, 3, 29, 6, 0, tzinfo=UTC))  # 07:00 in Dublin: the 23-hour day
    mail = EmailSink(SmtpServer.from_url(smtp.url), "callwatch@example.com", ["ops@example.com"],
                     name="ops-mail")
    DigestingSink(mail, policy, DigestStore(redis), clock).send(alert(1))
    [worker] = [DigestClock(redis, [DigestSink("ops-mail", policy, mail.send_digest)], clock=clock)]
    clock.now = datetime(2026, 3, 29, 7, 0, 30, tzinfo=UTC)  # 08:00:30 IST
    assert worker.tick() == [("ops-mail", "empty"), ("ops-mail", "sent")]
    period = last_finished(policy, clock.now)
    assert period.end - period.start == timedelta(hours=23)
    [mail] = smtp.accepted()
    assert "Sat 28 Mar 08:00 → Sun 29 Mar 08:00 Europe/Dublin" in str(mail.message["Subject"])
    assert str(mail.message["Message-ID"]).startswith("<digest.ops-mail.")
    assert "By agent: alice (1)" in mail.part("plain")


def test_a_busy_period_stays_within_slack_and_teams_limits(
        redis: redis_lib.Redis, slack_receiver: SlackStandIn, teams: TeamsStandIn) -> None:
    """Hundreds of agents and issues: Slack takes the message (50 blocks, 3000 a section,
    150 a header) and the Teams card stays far under 28 KB."""
    clock = Clock(T10 + timedelta(minutes=1))
    store = DigestStore(redis)
    slack, teams_sink = SlackSink(slack_receiver.url), TeamsSink(teams.url, name="teams")
    for name, sink in (("slack", slack), ("teams", teams_sink)):
        digesting = DigestingSink(sink, HOURLY, store, clock)
        digesting.name = name
        for n in range(300):
            digesting.send(alert(n, agent=f"agent-{n:03d}-" + "x" * 40, issues=3))
    clock.now = T10 + timedelta(hours=1)
    sinks = [DigestSink("slack", HOURLY, slack.send_digest),
             DigestSink("teams", HOURLY, teams_sink.send_digest)]
    assert sorted(DigestClock(redis, sinks, clock=clock).tick()) == [
        ("slack", "empty"), ("slack", "sent"), ("teams", "empty"), ("teams", "sent")]
    [posted] = slack_receiver.accepted()
    assert slack_payload_problem(posted.payload) is None and "and 290 more" in str(posted.payload)
    digest = store.read("teams", HOURLY, current_period(HOURLY, T10))
    assert len(str(teams_digest_card(digest)).encode()) < 20_000
    assert len(teams.accepted()) == 1


@pytest.mark.parametrize(("raw", "problem"), [
    ({"every": "week"}, "sinks.x.digest.every"),
    ({"every": "day", "at": "25:00"}, "sinks.x.digest.at"),
    ({"every": "day", "at": ":30"}, "sinks.x.digest.at"),
    ({"tz": "Mars/Olympus"}, "sinks.x.digest.tz"),
    ({"colour": "red"}, "sinks.x.digest.colour"),
])
def test_bad_digest_options_name_the_key(raw: dict[str, str], problem: str) -> None:
    """A wrong ``digest:`` stops start-up with the key that is wrong."""
    from service.delivery.digests.periods import parse_digest
    from service.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_digest(raw, "sinks.x.digest")
    assert caught.value.variable == problem


def test_a_digest_sink_counts_its_alerts_instead_of_posting_them(
        redis_server, redis: redis_lib.Redis, slack_receiver: SlackStandIn) -> None:
    """A routing file's slack sink with ``digest:`` takes each alert through the delivery
    step into its period's counters, posting nothing, and its digest goes out on the hour."""
    from devtools.web_client import make_settings
    from service.delivery.digests.sending import digest_sinks
    from service.delivery.ledger import DeliveryLedger
    from service.delivery.sinks.registry import Sinks
    from service.delivery.step import DeliveryRequest, deliver_step
    from service.routing_file.parse import parse_config

    routing = parse_config(f"sinks:\n  hourly: {{type: slack, url: '{slack_receiver.url}', "
                           "digest: {every: hour}}\n", {})
    clock = Clock(T10 + timedelta(minutes=10))
    sinks = Sinks.from_settings(make_settings(redis_server.url), routing.sinks, clock=clock,
                                redis=redis)
    for n in range(3):
        decision = deliver_step(DeliveryRequest("hourly", alert(n).to_envelope()),
                                sink=sinks.get("hourly"), ledger=DeliveryLedger(redis), pace=None,
                                retry_s=())
        assert decision.outcome == "delivered"
    assert slack_receiver.messages == []
    clock.now = T10 + timedelta(hours=1, seconds=3)
    assert DigestClock(redis, digest_sinks(sinks), clock=clock).tick() == [("hourly", "empty"),
                                                                           ("hourly", "sent")]
    [digest] = slack_receiver.accepted()
    assert "3 alerts" in digest.payload["text"]


def test_a_digest_owed_from_the_period_before_still_goes(
        redis_server, redis: redis_lib.Redis, slack_receiver: SlackStandIn) -> None:
    """Slack down for the whole next hour: the 10:00-11:00 digest goes out once it is back,
    during 12:00-13:00, and the 11:00-12:00 one (empty) sends nothing."""
    clock = Clock(T10 + timedelta(minutes=5))
    slack = SlackSink(slack_receiver.url)
    DigestingSink(slack, HOURLY, DigestStore(redis), clock).send(alert(1))
    [worker] = workers(redis_server.url, DigestSink("slack", HOURLY, slack.send_digest), clock, 1)
    clock.now = T10 + timedelta(hours=1, minutes=1)
    slack_receiver.script([(503, "down")])
    assert worker.tick() == [("slack", "empty"), ("slack", "retry")]
    clock.now = T10 + timedelta(hours=2, minutes=1)
    assert worker.tick() == [("slack", "sent"), ("slack", "empty")]
    [digest] = slack_receiver.accepted()
    assert "Mon 7 Dec 10:00 → Mon 7 Dec 11:00 UTC: 1 alert" in digest.payload["text"]


def test_a_worker_runs_the_digest_clock_only_for_digest_sinks(
        redis_server, redis: redis_lib.Redis, slack_receiver: SlackStandIn) -> None:
    """A worker starts a digest clock when some sink has ``digest:``, and none otherwise."""
    from devtools.web_client import make_settings
    from service.routing_file.parse import parse_config
    from workers import context
    from workers.digest_clock import start_digest_clock

    settings = make_settings(redis_server.url)
    context.configure(settings, redis, routing=None)
    assert start_digest_clock(redis) is None
    routing = parse_config(f"sinks:\n  daily: {{type: slack, url: '{slack_receiver.url}', "
                           "digest: {every: day, at: '08:00', tz: Europe/Dublin}}\n", {})
    context.configure(settings, redis, routing=routing)
    clock = start_digest_clock(redis)
    try:
        assert clock is not None and [s.name for s in clock.sinks] == ["daily"]
    finally:
        if clock is not None:
            clock.stop()
