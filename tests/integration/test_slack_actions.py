"""``POST /slack/actions`` against the Slack stand-in and real Redis: a signed click silences
or acknowledges (the Slack user as author) and updates the message through
``response_url``; anything else is refused with a JSON error and writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import redis as redis_lib
import requests

from devtools.hostile_peers import HostilePeer, drip, drip_head, fixed, huge
from devtools.sample_alerts import sample_alert
from devtools.standins import SlackStandIn
from devtools.web_client import LiveServer, make_settings
from service import keys
from service.delivery.incidents.desk import IncidentDesk
from service.delivery.incidents.policy import StormPolicy
from service.delivery.incidents.store import IncidentStore
from service.delivery.routing import RouteMatch
from service.delivery.silences import Silences
from service.delivery.sinks.slack_blocks import buttons
from service.delivery.slack_actions import ResponseFailed, post_answer
from service.http_session import http_session
from service.web import create_app

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ISSUE = "sdk_edge/connection/error/31000"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(min_interval_s=0, signing_secret=SECRET) as server:
        yield server


@pytest.fixture
def actions_url(redis_server, redis: redis_lib.Redis) -> Iterator[str]:
    app = create_app(make_settings(redis_server.url, SLACK_SIGNING_SECRET=SECRET), redis=redis)
    with LiveServer(app) as server:
        yield server.url + "/slack/actions"


def posted_message() -> dict[str, object]:
    """A message as callwatch posts it, with its buttons."""
    return {"text": "alert", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Call* `CA…`"}},
        buttons(issue_key=ISSUE, identity="alice")]}


def everything(redis: redis_lib.Redis) -> dict[bytes, object]:
    """Every key and its type: what a refused request must leave as it was."""
    return {key: redis.type(key) for key in redis.scan_iter()}


def open_incident(redis: redis_lib.Redis) -> str:
    store = IncidentStore(redis)
    match = RouteMatch("default", ("slack",), StormPolicy(calls=1, within_s=60), None)
    desk = IncidentDesk(store, lambda alert: [match], lambda name: "chat", clock=time.time)
    alert = sample_alert()
    desk.deliveries(alert, alert.to_envelope())
    return desk.checks[0][0]


def test_silence_issue_click_silences_for_an_hour_and_updates_the_message(
        slack: SlackStandIn, actions_url: str, redis: redis_lib.Redis) -> None:
    """A click on "Silence issue 1 h" creates a one-hour silence of that issue by the Slack
    user, which then silences the alert; the message is updated to say who did it."""
    answer = slack.click(actions_url, "silence_issue", ISSUE, user="bob", message=posted_message())
    assert answer.status == 200
    [silence] = Silences(redis).active()
    assert silence.author == "bob" and silence.matcher.to_json() == {"issue": [ISSUE]}
    assert 3590 <= (silence.ends_at - silence.starts_at).total_seconds() <= 3600
    assert Silences(redis).matching(sample_alert()) == silence
    [update] = slack.responses
    assert update.payload["replace_original"] is True
    blocks = update.payload["blocks"]
    assert [b["type"] for b in blocks] == ["section", "context"]
    assert "bob silenced issue sdk_edge/connection/error/31000 for 1 h" in blocks[-1]["elements"][0]["text"]


def test_acknowledge_marks_the_incident_once_and_names_who_was_first(
        slack: SlackStandIn, actions_url: str, redis: redis_lib.Redis) -> None:
    """"Acknowledge" records the Slack user on the incident; a later click by someone else
    changes nothing and is told who acknowledged first."""
    incident_id = open_incident(redis)
    assert slack.click(actions_url, "acknowledge", incident_id, user="bob").status == 200
    assert slack.click(actions_url, "acknowledge", incident_id, user="carol").status == 200
    fields = IncidentStore(redis).read(incident_id).fields  # type: ignore[union-attr]
    assert fields["acknowledged_by"] == "bob"
    first, second = (r.payload["text"] for r in slack.responses)
    assert "bob acknowledged this incident" in first
    assert second.startswith("bob had already acknowledged")


def test_a_repeated_click_acts_once(slack: SlackStandIn, actions_url: str,
                                    redis: redis_lib.Redis) -> None:
    """The same signed click posted twice (a retry) creates one silence."""
    body, headers = slack.interaction("silence_issue", ISSUE, user="bob")
    answers = [requests.post(actions_url, data=body, headers=headers, timeout=10) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert len(Silences(redis).active()) == 1


@pytest.mark.parametrize(("case", "status", "error"), [
    ("wrong secret", 403, "invalid_signature"),
    ("six minutes old", 403, "invalid_signature"),
    ("no signature", 403, "invalid_signature"),
    ("unknown action", 400, "invalid_request"),
    ("bad issue value", 400, "invalid_request"),
    ("plain http response_url", 400, "invalid_request"),
    ("unknown incident", 404, "not_found"),
    ("not a form", 415, "unsupported_media_type"),
    ("too large", 413, "payload_too_large"),
])
def test_refused_requests_answer_json_and_write_nothing(
        slack: SlackStandIn, actions_url: str, redis: redis_lib.Redis,
        case: str, status: int, error: str) -> None:
    """Anything but a well-signed, fresh click on a known target is refused with a JSON
    error, and Redis is left exactly as it was."""

    before = everything(redis)
    action, value, stamp = "silence_issue", ISSUE, None
    if case == "six minutes old":
        stamp = int(time.time()) - 360
    if case == "unknown action":
        action = "delete_everything"
    if case == "bad issue value":
        value = "two words"
    if case == "unknown incident":
        action, value = "acknowledge", "inc_" + "a" * 20
    body, headers = slack.interaction(action, value, timestamp=stamp)
    if case == "wrong secret":
        from slack_sdk.signature import SignatureVerifier
        stamp_text = headers["X-Slack-Request-Timestamp"]
        headers["X-Slack-Signature"] = SignatureVerifier("another-secret").generate_signature(
            timestamp=stamp_text, body=body) or ""
    if case == "no signature":
        del headers["X-Slack-Signature"]
    if case == "plain http response_url":
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        payload["response_url"] = "http://hooks.example.com/actions/1"
        body, headers = _signed(payload, int(time.time()))
    if case == "not a form":
        headers["Content-Type"] = "application/json"
    if case == "too large":
        body = body + b"&pad=" + b"x" * (600 * 1024)
    answer = requests.post(actions_url, data=body, headers=headers, timeout=10)
    assert answer.status_code == status
    assert answer.json()["error"] == error and answer.json()["message"]
    assert everything(redis) == before
    assert slack.responses == []


def _signed(payload: dict[str, object], stamp: int) -> tuple[bytes, dict[str, str]]:
    from urllib.parse import urlencode

    from slack_sdk.signature import SignatureVerifier

    body = urlencode({"payload": json.dumps(payload)}).encode()
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=str(stamp), body=body) or ""
    return body, {"Content-Type": "application/x-www-form-urlencoded",
                  "X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": signature}


def test_without_a_signing_secret_the_route_is_absent(redis_server, redis: redis_lib.Redis) -> None:
    """With no ``SLACK_SIGNING_SECRET`` the route does not exist: a JSON 404, nothing written."""
    client = create_app(make_settings(redis_server.url), redis=redis).test_client()
    answer = client.post("/slack/actions", data={"payload": "{}"})
    assert answer.status_code == 404 and answer.json["error"] == "http_error"
    assert redis.dbsize() == 0


def test_click_keys_are_kept_a_day_only(slack: SlackStandIn, actions_url: str,
                                        redis: redis_lib.Redis) -> None:
    """What a click remembers (to act once) expires by itself."""
    slack.click(actions_url, "silence_issue", ISSUE)
    [key] = list(redis.scan_iter(keys.slack_action("*")))
    assert 0 < redis.ttl(key) <= 86400


@pytest.mark.parametrize("answer", [
    fixed(302, {"Location": "http://127.0.0.1:9/elsewhere"}),
    drip(0.2, b"o", announced=100),
])
def test_response_url_is_not_trusted(answer: Any) -> None:
    """A ``response_url`` that redirects or drips is given up on (no redirect followed, the
    answer read before a deadline), never hangs the click."""
    with HostilePeer(answer) as peer:
        with pytest.raises(ResponseFailed):
            post_answer(http_session({}), peer.url + "/actions/1", {"text": "done"})
        assert len(peer.requests) == 1


def test_a_flooding_response_url_is_read_capped() -> None:
    """An endless answer is read up to the cap only: the click does not read it all."""
    total = 200_000_000
    with HostilePeer(huge(total)) as peer:
        post_answer(http_session({}), peer.url + "/actions/1", {"text": "done"})
        assert len(peer.requests) == 1 and peer.sent < total


def test_a_failed_message_update_still_acts(slack: SlackStandIn, actions_url: str,
                                            redis: redis_lib.Redis) -> None:
    """When the message cannot be updated the silence stands and Slack still gets its 200."""
    with HostilePeer(fixed(500, {})) as peer:
        body, headers = slack.interaction("silence_issue", ISSUE)
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        payload["response_url"] = peer.url + "/actions/1"
        body, headers = _signed(payload, int(time.time()))
        assert requests.post(actions_url, data=body, headers=headers, timeout=10).status_code == 200
    assert len(Silences(redis).active()) == 1


def test_silence_agent_click_silences_the_agents_calls_either_way(
        slack: SlackStandIn, actions_url: str, redis: redis_lib.Redis) -> None:
    """"Silence agent 1 h" silences every alert of that agent, calling or called."""
    from dataclasses import replace

    from service.analysis.alert import Alert

    assert slack.click(actions_url, "silence_agent", "alice", user="bob").status == 200
    out = sample_alert()
    inbound = Alert(alert_id="alr_in", created_at=out.created_at, issues=out.issues,
                    call=replace(out.call, from_="+14155550123", to="client:alice"))
    other = Alert(alert_id="alr_other", created_at=out.created_at, issues=out.issues,
                  call=replace(out.call, from_="client:carol"))
    silences = Silences(redis)
    assert silences.matching(out) and silences.matching(inbound) and not silences.matching(other)
    assert "bob silenced agent alice for 1 h" in slack.responses[0].payload["text"]


def test_a_click_on_a_long_message_is_taken(slack: SlackStandIn, actions_url: str,
                                            redis: redis_lib.Redis) -> None:
    """Slack sends the whole message back with a click: one of 50 full sections (far over
    the status callback's 64 KiB) is still taken."""
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": "x " * 1400}}
                for _ in range(48)]
    message = {"text": "alert", "blocks": [*sections, buttons(issue_key=ISSUE, identity="alice")]}
    assert slack.click(actions_url, "silence_issue", ISSUE, message=message).status == 200
    assert len(Silences(redis).active()) == 1
    assert len(slack.responses[0].payload["blocks"]) == 49


def _limited(redis_server: Any, redis: redis_lib.Redis, name: str, *patterns: str) -> redis_lib.Redis:
    """A connection whose Redis user may touch only ``patterns`` (ACL key patterns)."""
    redis.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw", "+@all", *patterns)
    return redis_lib.Redis.from_url(redis_server.url, username=name, password="pw")


def test_a_click_interrupted_by_a_redis_fault_acts_once_on_its_retry(
        redis_server, slack: SlackStandIn, redis: redis_lib.Redis) -> None:
    """Redis failing while a click is handled loses nothing and duplicates nothing: a failed
    silence leaves the click unrecorded (the retry silences), and a click whose record
    failed after the silence was made is retried into that same one silence."""
    from datetime import UTC, datetime
    from urllib.parse import parse_qs

    from service.delivery.slack_actions import perform, read_action

    def click(user: str) -> Any:
        body, _ = slack.interaction("silence_issue", ISSUE, user=user, message=posted_message())
        return read_action(parse_qs(body.decode())["payload"][0])

    now = lambda: datetime.now(UTC)  # noqa: E731
    first = click("bob")
    no_silences = _limited(redis_server, redis, "no-silences", "~callwatch:slack-action:*")
    with pytest.raises(redis_lib.ResponseError):
        perform(first, redis=no_silences, clock=now)
    assert Silences(redis).active() == []
    assert "bob silenced issue" in perform(first, redis=redis, clock=now).text
    assert len(Silences(redis).active()) == 1

    second = click("carol")
    no_record = _limited(redis_server, redis, "no-record", "~callwatch:silences",
                         "%R~callwatch:slack-action:*")
    with pytest.raises(redis_lib.ResponseError):
        perform(second, redis=no_record, clock=now)
    assert "carol silenced issue" in perform(second, redis=redis, clock=now).text
    assert sorted(s.author for s in Silences(redis).active()) == ["bob", "carol"]
    assert perform(second, redis=redis, clock=now).text.endswith("already acted on")
    redis.execute_command("ACL", "DELUSER", "no-silences", "no-record")


def test_a_response_url_dripping_its_headers_is_given_up_at_the_deadline() -> None:
    """Headers that never end, a byte at a time within the per-read timeout: the update is
    given up on while the peer is still dripping (the whole exchange has one deadline)."""
    every_s, for_s = 0.2, 20.0
    with HostilePeer(drip_head(every_s, for_s=for_s)) as peer:
        with pytest.raises(ResponseFailed):
            post_answer(http_session({}), peer.url + "/actions/1", {"text": "done"})
        assert 0 < peer.sent < for_s / every_s / 2


def test_every_sink_post_has_one_deadline_over_headers_too() -> None:
    """The sinks' shared POST path gives up on dripping headers at its deadline as well."""
    from service.delivery.sinks.json_post import post
    from service.errors import DeliveryRetryable

    with HostilePeer(drip_head(0.2, for_s=20.0)) as peer:
        with pytest.raises(DeliveryRetryable, match="still answering"):
            post(http_session({}), peer.url, b"{}", {}, who="peer", timeout=(1.0, 1.0),
                 deadline_s=1.0)
        assert 0 < peer.sent < 50


def test_a_slack_user_name_cannot_mention_the_channel_in_the_update(
        slack: SlackStandIn, actions_url: str, redis: redis_lib.Redis) -> None:
    """A user name holding ``<!channel>`` reaches the update's text escaped (no mention),
    with or without the original message to update."""
    assert slack.click(actions_url, "silence_agent", "alice", user="<!channel>").status == 200
    [update] = slack.responses
    assert "<!channel>" not in update.payload["text"] and "&lt;!channel&gt;" in update.payload["text"]
