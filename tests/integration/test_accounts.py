"""Several Twilio accounts in one deployment (TWILIO_ACCOUNTS): each account's callbacks are
checked with its own tokens, its calls read with its own credentials, secrets never shown."""

from __future__ import annotations

from typing import Any

import redis as redis_lib
from structlog.testing import capture_logs

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.sender import callback_params
from devtools.simulator.server import SimulatorServer
from devtools.standins import WebhookReceiver
from devtools.web_client import Callbacks
from service.insights.accounts import Accounts
from service.routing_file.load import load
from service.settings import Settings

SUB_SID = "AC" + "5b" * 16
SUB_TOKEN = "sub-account-token-not-secret-1"
SUB_NEW_TOKEN = "sub-account-token-not-secret-2"
STRANGER_SID = "AC" + "7c" * 16
PHONE = {"From": "+14155550100", "To": "+14155550123", "Direction": "inbound"}


def make_pipe(redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
              webhook_receiver: WebhookReceiver, accounts: str) -> Pipeline:
    settings = pipeline_settings(redis_server.url, simulator,
                                 webhooks=[webhook_receiver.url_for("one")],
                                 secret=WEBHOOK_SECRET, TWILIO_ACCOUNTS=accounts)
    return Pipeline(settings, redis, simulator)


def post(pipe: Pipeline, call_sid: str, account_sid: str, token: str, **extra: str) -> int:
    """One signed terminal callback of ``account_sid``'s call, signed with ``token``."""
    callbacks: Callbacks = pipe.callbacks
    params = callback_params(call_sid, account_sid, "completed", **extra)
    return int(callbacks.post(params, token=token).status_code)


def test_two_accounts_side_by_side_each_fetched_with_its_own_credentials(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """A sub-account's callback signed with its token is accepted and its events read with
    its credentials; the main account's call still with the main ones; both alerted."""
    simulator.add_account(SUB_SID, SUB_TOKEN)
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver, f"{SUB_SID}:{SUB_TOKEN}")
    sub_call = simulator.add_call("sdk-error", account_sid=SUB_SID)
    main_call = simulator.add_call("mic-denied")
    assert post(pipe, sub_call, SUB_SID, SUB_TOKEN) == 204
    assert post(pipe, main_call, simulator.account_sid, simulator.auth_token) == 204
    pipe.drain()
    who = {r["call_sid"]: (r["username"], r["status"]) for r in simulator.api_requests("events")}
    assert who == {sub_call: (SUB_SID, 200), main_call: (simulator.account_sid, 200)}
    accounts = {d.body["data"]["call"]["account_sid"] for d in webhook_receiver.accepted()}
    assert accounts == {SUB_SID, simulator.account_sid}


def test_another_accounts_token_never_validates_a_callback(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """The sub-account's call signed with the main token, or the main account's call signed
    with the sub-account's token, is 403; an unlisted account's callback is 403; nothing kept."""
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver, f"{SUB_SID}:{SUB_TOKEN}")
    sid = "CA" + "9" * 32
    assert post(pipe, sid, SUB_SID, simulator.auth_token) == 403
    assert post(pipe, sid, simulator.account_sid, SUB_TOKEN) == 403
    assert post(pipe, sid, STRANGER_SID, "stranger-token") == 403
    assert post(pipe, sid, STRANGER_SID, simulator.auth_token) == 403
    assert [k for k in redis.keys("callwatch:call:*")] == []


def test_a_sub_accounts_phone_leg_lists_children_with_its_own_credentials(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """The sub-account's phone leg lists its children in its own account, as itself."""
    simulator.add_account(SUB_SID, SUB_TOKEN)
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver, f"{SUB_SID}:{SUB_TOKEN}")
    parent = simulator.add_call("inbound-to-agent", account_sid=SUB_SID)
    assert post(pipe, parent, SUB_SID, SUB_TOKEN, **PHONE) == 204
    pipe.drain()
    [listing] = simulator.api_requests("calls")
    assert listing["username"] == SUB_SID and f"/Accounts/{SUB_SID}/" in listing["path"]
    [delivery] = webhook_receiver.accepted()
    assert delivery.body["data"]["call"]["account_sid"] == SUB_SID
    assert delivery.body["data"]["call"]["parent_call_sid"] == parent


def test_token_rotation_per_account(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """An account listed with its old and new tokens: both sign callbacks; once Twilio only
    takes the new one, Insights falls back to it once, logged by variable, never by value."""
    simulator.add_account(SUB_SID, SUB_NEW_TOKEN)  # the rotation is done on Twilio's side
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver,
                     f"{SUB_SID}:{SUB_TOKEN},{SUB_SID}:{SUB_NEW_TOKEN}")
    first = simulator.add_call("sdk-error", account_sid=SUB_SID)
    second = simulator.add_call("mic-denied", account_sid=SUB_SID)
    assert post(pipe, first, SUB_SID, SUB_TOKEN) == 204
    assert post(pipe, second, SUB_SID, SUB_NEW_TOKEN) == 204
    with capture_logs() as logs:
        pipe.drain()
    assert [r["status"] for r in simulator.api_requests("events")] == [401, 200, 200]
    fell_back = [line for line in logs if line["event"] == "insights_auth_fell_back"]
    assert len(fell_back) == 1 and SUB_SID in fell_back[0]["using"]
    assert len(webhook_receiver.accepted()) == 2
    for line in logs:
        assert SUB_TOKEN not in str(line) and SUB_NEW_TOKEN not in str(line)


def test_tokens_are_masked_in_settings_and_accounts(simulator: SimulatorServer) -> None:
    """Neither the settings nor the accounts show a token in their repr."""
    settings = Settings.from_env({"TWILIO_ACCOUNT_SID": simulator.account_sid,
                                  "TWILIO_AUTH_TOKEN": simulator.auth_token,
                                  "TWILIO_ACCOUNTS": f"{SUB_SID}:{SUB_TOKEN}"})
    shown = repr(settings) + repr(Accounts.from_settings(settings))
    shown += repr(Accounts.from_settings(settings).credentials(SUB_SID))
    assert SUB_TOKEN not in shown and simulator.auth_token not in shown
    assert SUB_SID in repr(Accounts.from_settings(settings))


def test_a_call_of_an_account_no_longer_watched_fails_without_a_request(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """A call admitted for a sub-account that was then removed from TWILIO_ACCOUNTS ends as
    a failed analysis (reason unknown_account), with no request sent with other credentials."""
    simulator.add_account(SUB_SID, SUB_TOKEN)
    pipe = make_pipe(redis, redis_server, simulator, webhook_receiver, f"{SUB_SID}:{SUB_TOKEN}")
    sid = simulator.add_call("sdk-error", account_sid=SUB_SID)
    assert post(pipe, sid, SUB_SID, SUB_TOKEN) == 204
    make_pipe(redis, redis_server, simulator, webhook_receiver, "")  # redeployed without it
    with capture_logs() as logs:
        pipe.drain()
    failed = [line for line in logs if line["event"] == "analysis_failed"]
    assert [line["reason"] for line in failed] == ["unknown_account"]
    assert simulator.api_requests("events") == [] and webhook_receiver.accepted() == []


def test_routes_send_each_accounts_alerts_to_its_own_sink(
        redis: redis_lib.Redis, redis_server: Any, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver) -> None:
    """A route matching account_sid sends the sub-account's alert to its team's sink only;
    the main account's alert takes the default."""
    simulator.add_account(SUB_SID, SUB_TOKEN)
    config = (
        "sinks:\n"
        f"  sub-team: {{type: webhook, url: '{webhook_receiver.url_for('sub')}', "
        f"secret: '{WEBHOOK_SECRET}'}}\n"
        f"  main-team: {{type: webhook, url: '{webhook_receiver.url_for('main')}', "
        f"secret: '{WEBHOOK_SECRET}'}}\n"
        "routes:\n"
        f"  - match: {{account_sid: {SUB_SID}}}\n"
        "    sinks: [sub-team]\n"
        "default: [main-team]\n")
    env = {"TWILIO_ACCOUNTS": f"{SUB_SID}:{SUB_TOKEN}", "CALLWATCH_CONFIG": config}
    settings = pipeline_settings(redis_server.url, simulator, **env)
    pipe = Pipeline(settings, redis, simulator, routing=load(settings, env))
    sub_call = simulator.add_call("sdk-error", account_sid=SUB_SID)
    main_call = simulator.add_call("sdk-error")
    assert post(pipe, sub_call, SUB_SID, SUB_TOKEN) == 204
    assert post(pipe, main_call, simulator.account_sid, simulator.auth_token) == 204
    pipe.drain()
    got = {d.name: d.body["data"]["call"]["call_sid"] for d in webhook_receiver.accepted()}
    assert got == {"sub": sub_call, "main": main_call}
