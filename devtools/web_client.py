"""Helpers for tests of the web edge: settings, signed callbacks, a live server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from devtools.background_server import BackgroundServer
from devtools.simulator import sender
from service.calls import CALLBACK_PATH
from service.settings import Settings

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-primary"
SECONDARY_TOKEN = "test-auth-token-secondary"
PUBLIC_BASE = "https://alerts.example.com"


def make_settings(redis_url: str, **overrides: str) -> Settings:
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "ANALYSIS_DELAY_SECONDS": "90",
        "LOG_FORMAT": "json",
    }
    env.update(overrides)
    return Settings.from_env({k: v for k, v in env.items() if v is not None})


def call_sid(n: int) -> str:
    return f"CA{n:032x}"


def callback_params(sid: str, status: str = "completed", **extra: str) -> dict[str, str]:
    """Twilio's fields for the test account (the simulator's sender builds them), with a
    fixed time and sequence number so tests can assert on them."""
    fields = {"Timestamp": "Fri, 27 Nov 2026 10:15:00 +0000", "SequenceNumber": "3", **extra}
    return sender.callback_params(sid, ACCOUNT_SID, status, **fields)


def sign(url: str, params: Mapping[str, str] | None, token: str = AUTH_TOKEN) -> str:
    """``X-Twilio-Signature`` with the test token unless another is given."""
    return sender.sign(url, params, token)


class Callbacks:
    """Posts (or GETs) signed status callbacks through a Flask test client."""

    def __init__(self, client: FlaskClient, base: str = PUBLIC_BASE) -> None:
        self.client = client
        self.base = base

    def post(self, params: Mapping[str, str], *, query: str = "", token: str = AUTH_TOKEN,
             signature: str | None = None, **kwargs: Any) -> Any:
        path = CALLBACK_PATH + (f"?{query}" if query else "")
        sig = signature if signature is not None else sign(self.base + path, params, token)
        return self.client.post(path, data=dict(params), headers={"X-Twilio-Signature": sig},
                                **kwargs)

    def get(self, params: Mapping[str, str], *, token: str = AUTH_TOKEN) -> Any:
        from urllib.parse import urlencode

        path = CALLBACK_PATH + "?" + urlencode(params)
        return self.client.get(path, headers={"X-Twilio-Signature": sign(self.base + path, {}, token)})


class LiveServer(BackgroundServer):
    """The app on a real threaded HTTP server on 127.0.0.1, in a daemon thread."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app, name="callwatch-web")
