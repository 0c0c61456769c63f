"""TWILIO_ACCOUNTS and the other round-3 variables; per-account signatures and credentials."""

from __future__ import annotations

import pytest
from flask import Flask

from devtools.simulator.sender import sign
from service.errors import ConfigError
from service.insights.accounts import Accounts, UnknownAccount
from service.settings import Settings
from service.web.signature import AccountSignatures

MAIN = "AC" + "a" * 32
SUB = "AC" + "b" * 32
OTHER = "AC" + "c" * 32
BASE = {"TWILIO_ACCOUNT_SID": MAIN, "TWILIO_AUTH_TOKEN": "main-token"}
URL = "https://alerts.example.com/twilio/status-callback"


def test_round_three_defaults() -> None:
    """Defaults: no more accounts, api.twilio.com, children followed, 1,500 ms, 600 s."""
    s = Settings.from_env(BASE)
    assert s.twilio_accounts == () and s.twilio_api_base_url == "https://api.twilio.com"
    assert (s.follow_child_legs, s.voice_agent_latency_ms, s.summary_delay_seconds) == (
        True, 1500, 600)
    assert s.events_edges == ("sdk_edge",) and not s.reads_summaries


def test_accounts_and_call_summary_are_read() -> None:
    """Pairs are read (an account twice: a rotation); call_summary is not an Events edge."""
    s = Settings.from_env({**BASE, "TWILIO_ACCOUNTS": f" {SUB}:t1 , {SUB}:t2,{OTHER}:t3",
                           "INSIGHTS_EDGES": "sdk_edge,call_summary",
                           "FOLLOW_CHILD_LEGS": "false", "SUMMARY_DELAY_SECONDS": "0"})
    assert s.twilio_accounts == ((SUB, "t1"), (SUB, "t2"), (OTHER, "t3"))
    assert s.events_edges == ("sdk_edge",) and s.reads_summaries
    assert Accounts.from_settings(s).tokens() == {MAIN: ("main-token",), SUB: ("t1", "t2"),
                                                  OTHER: ("t3",)}


@pytest.mark.parametrize("value", ["ACnope:tok", f"{SUB}", f"{SUB}:", f"{MAIN}:again"])
def test_a_bad_pair_names_the_variable_never_the_token(value: str) -> None:
    """A malformed pair stops start-up naming TWILIO_ACCOUNTS and its position, no token."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "TWILIO_ACCOUNTS": f"{OTHER}:secret-one,{value}"})
    assert "TWILIO_ACCOUNTS" in str(caught.value) and "pair 2" in str(caught.value)
    assert "secret-one" not in str(caught.value) and "again" not in str(caught.value)


def test_call_summary_alone_is_refused() -> None:
    """INSIGHTS_EDGES=call_summary alone names no Events edge: a start-up error."""
    with pytest.raises(ConfigError, match="INSIGHTS_EDGES"):
        Settings.from_env({**BASE, "INSIGHTS_EDGES": "call_summary"})


def test_credentials_per_account_and_unknown_accounts() -> None:
    """Each account's calls use its own SID and tokens; an unwatched account is refused."""
    accounts = Accounts.from_settings(Settings.from_env({**BASE, "TWILIO_ACCOUNTS": f"{SUB}:t1"}))
    assert [c.auth for c in accounts.credentials(SUB).in_order()] == [(SUB, "t1")]
    assert [c.auth for c in accounts.credentials(MAIN).in_order()] == [(MAIN, "main-token")]
    with pytest.raises(UnknownAccount):
        accounts.credentials(OTHER)


def check(signatures: AccountSignatures, account: str, token: str) -> bool:
    params = {"CallSid": "CA" + "1" * 32, "AccountSid": account, "CallStatus": "completed"}
    app = Flask(__name__)
    headers = {"X-Twilio-Signature": sign(URL, params, token)}
    with app.test_request_context("/twilio/status-callback", method="POST", data=params,
                                  base_url="https://alerts.example.com", headers=headers) as ctx:
        return signatures.check(ctx.request, params, account)


def test_only_the_callbacks_own_account_token_validates_it() -> None:
    """Each account's token validates its own callbacks only; unlisted accounts never."""
    signatures = AccountSignatures({MAIN: ["main-token"], SUB: ["old", "new"]},
                                   "https://alerts.example.com")
    assert check(signatures, MAIN, "main-token")
    assert check(signatures, SUB, "old") and check(signatures, SUB, "new")
    assert not check(signatures, SUB, "main-token")
    assert not check(signatures, MAIN, "new")
    assert not check(signatures, OTHER, "main-token")
