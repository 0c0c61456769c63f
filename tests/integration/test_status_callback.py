"""The status-callback endpoint against real Redis: what is accepted, refused and scheduled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
import redis as redis_lib
import requests
from flask import Flask
from flask.testing import FlaskClient

from devtools.web_client import (
    CALLBACK_PATH,
    PUBLIC_BASE,
    SECONDARY_TOKEN,
    Callbacks,
    LiveServer,
    call_sid,
    callback_params,
    make_settings,
    sign,
)
from service.intake import INTAKE_KEY, call_key
from service.web import create_app


def redis_snapshot(redis: redis_lib.Redis) -> dict[bytes, object]:
    """Every key with its type and content, to show a request changed nothing.

    Metrics are left out: web processes add them up in memory and a background
    thread writes the totals, so no request writes them itself.
    """
    snapshot: dict[bytes, object] = {}
    for key in redis.scan_iter():
        if key.startswith(b"callwatch:metrics:"):
            continue
        kind = redis.type(key)
        value = {b"hash": redis.hgetall, b"zset": lambda k: redis.zrange(k, 0, -1),
                 b"set": redis.smembers, b"list": lambda k: redis.lrange(k, 0, -1),
                 b"string": redis.get}[kind](key)
        snapshot[key] = value
    return snapshot


@pytest.fixture
def app(redis: redis_lib.Redis, redis_server) -> Flask:
    return create_app(make_settings(redis_server.url), redis=redis)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def callbacks(client: FlaskClient) -> Callbacks:
    return Callbacks(client)


def pending_calls(redis: redis_lib.Redis) -> list[str]:
    """CallSids waiting in the intake for their analysis."""
    return [m.decode() for m in redis.zrange(INTAKE_KEY, 0, -1)]


def test_terminal_callback_schedules_analysis(callbacks: Callbacks, redis: redis_lib.Redis) -> None:
    """A signed `completed` callback answers 204 and admits the call, due ~90 s ahead."""
    sid = call_sid(1)
    response = callbacks.post(callback_params(sid))
    assert response.status_code == 204
    assert response.data == b""
    assert pending_calls(redis) == [sid]
    due = redis.zscore(INTAKE_KEY, sid)
    now = redis.time()[0]
    assert 85 <= due - now <= 91


def test_job_carries_callback_fields(callbacks: Callbacks, redis: redis_lib.Redis) -> None:
    """The admitted call holds what the alert needs: status, numbers, duration, parent, sequence."""
    sid, parent = call_sid(2), call_sid(3)
    callbacks.post(callback_params(sid, ParentCallSid=parent, SipResponseCode="200"))
    call = json.loads(redis.get(call_key(sid)))
    assert call["call_sid"] == sid and call["status"] == "completed"
    assert call["from"] == "client:alice" and call["to"] == "+14155550123"
    assert call["duration_s"] == 42 and call["parent_call_sid"] == parent
    assert call["sequence_number"] == 3 and call["sip_response_code"] == 200
    assert call["timestamp"] == "Fri, 27 Nov 2026 10:15:00 +0000"


def test_get_callback_is_accepted(callbacks: Callbacks, redis: redis_lib.Redis) -> None:
    """StatusCallbackMethod=GET: fields in the query, signature over the URL alone."""
    response = callbacks.get(callback_params(call_sid(4), "busy"))
    assert response.status_code == 204
    assert pending_calls(redis) == [call_sid(4)]


@pytest.mark.parametrize("status", ["initiated", "ringing", "in-progress", "queued"])
def test_non_terminal_status_ignored(callbacks: Callbacks, redis: redis_lib.Redis, status: str) -> None:
    """Non-terminal statuses answer 204 and write nothing."""
    assert callbacks.post(callback_params(call_sid(5), status)).status_code == 204
    assert redis_snapshot(redis) == {}


def test_repeats_and_any_status_order_schedule_once(callbacks: Callbacks,
                                                    redis: redis_lib.Redis) -> None:
    """However callbacks for one call arrive, in any order and repeated, one job is scheduled."""
    sid = call_sid(6)
    for status in ["completed", "ringing", "initiated", "completed", "in-progress", "completed"]:
        assert callbacks.post(callback_params(sid, status)).status_code == 204
    assert pending_calls(redis) == [sid]


def test_percent_escaped_query_validates(callbacks: Callbacks, redis: redis_lib.Redis) -> None:
    """A query with %-escapes is signed as sent, not as Werkzeug decodes it."""
    response = callbacks.post(callback_params(call_sid(7)), query="tenant=a%3Ab%40c&x=%C3%BC+1")
    assert response.status_code == 204
    assert pending_calls(redis) == [call_sid(7)]


def test_signature_over_decoded_query_refused(callbacks: Callbacks, redis: redis_lib.Redis) -> None:
    """A signature over the decoded form of the query (Werkzeug's request.url) does not match
    what was sent."""
    params = callback_params(call_sid(8))
    wrong = sign(PUBLIC_BASE + CALLBACK_PATH + "?tenant=\u00fc b", params)
    response = callbacks.post(params, query="tenant=%C3%BC+b", signature=wrong)
    assert response.status_code == 403
    assert redis_snapshot(redis) == {}


def test_get_callback_signed_with_colon_and_at_unescaped(callbacks: Callbacks,
                                                         redis: redis_lib.Redis) -> None:
    """A GET callback of a Voice SDK or SIP call sends From=client%3Aalice and To=sip%3A…%40…;
    Twilio has signed such URLs with ':' and '@' unescaped (twilio-node accepts both), so
    that signature is accepted too, and nothing else is unescaped."""
    params = callback_params(call_sid(5), "completed", From="client:alice",
                             To="sip:bob@example.com")
    query = urlencode(params)
    assert "%3A" in query and "%40" in query
    legacy = query.replace("%3A", ":").replace("%40", "@")
    response = callbacks.client.get(f"{CALLBACK_PATH}?{query}", headers={
        "X-Twilio-Signature": sign(f"{PUBLIC_BASE}{CALLBACK_PATH}?{legacy}", {})})
    assert response.status_code == 204
    assert pending_calls(redis) == [call_sid(5)]
    forged = sign(f"{PUBLIC_BASE}{CALLBACK_PATH}?{legacy.replace('completed', 'failed')}", {})
    refused = callbacks.client.get(f"{CALLBACK_PATH}?{query}",
                                   headers={"X-Twilio-Signature": forged})
    assert refused.status_code == 403


def test_secondary_token_accepted(callbacks: Callbacks, redis_server, redis: redis_lib.Redis) -> None:
    """With TWILIO_AUTH_TOKEN_SECONDARY set, callbacks signed with it are accepted."""
    app = create_app(make_settings(redis_server.url, TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY_TOKEN),
                     redis=redis)
    response = Callbacks(app.test_client()).post(callback_params(call_sid(9)), token=SECONDARY_TOKEN)
    assert response.status_code == 204
    refused = callbacks.post(callback_params(call_sid(10)), token=SECONDARY_TOKEN)
    assert refused.status_code == 403


def test_proxy_with_public_base_url(redis_server, redis: redis_lib.Redis) -> None:
    """Behind a TLS proxy the app sees http://internal; PUBLIC_BASE_URL gives the signed URL."""
    app = create_app(make_settings(redis_server.url), redis=redis)
    params = callback_params(call_sid(11))
    sig = sign(PUBLIC_BASE + CALLBACK_PATH, params)
    response = app.test_client().post(CALLBACK_PATH, data=params,
                                      base_url="http://web.internal:8000",
                                      headers={"X-Twilio-Signature": sig,
                                               "X-Forwarded-Host": "evil.example.com"})
    assert response.status_code == 204


def test_proxy_without_public_base_url_trusts_configured_hops(redis_server,
                                                              redis: redis_lib.Redis) -> None:
    """Without PUBLIC_BASE_URL, X-Forwarded-Proto and -Port are trusted only with
    TRUSTED_PROXY_HOPS (Heroku's router: TLS ends there, Host passes through)."""
    params = callback_params(call_sid(12))
    sig = sign("https://public.example.com/twilio/status-callback", params)
    headers = {"X-Twilio-Signature": sig, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}
    trusting = create_app(make_settings(redis_server.url, PUBLIC_BASE_URL="",
                                        TRUSTED_PROXY_HOPS="1"), redis=redis)
    assert trusting.test_client().post(CALLBACK_PATH, data=params,
                                       base_url="http://public.example.com",
                                       headers=headers).status_code == 204
    redis.flushdb()
    untrusting = create_app(make_settings(redis_server.url, PUBLIC_BASE_URL=""), redis=redis)
    assert untrusting.test_client().post(CALLBACK_PATH, data=params,
                                         base_url="http://public.example.com",
                                         headers=headers).status_code == 403
    assert redis_snapshot(redis) == {}


def test_a_client_set_forwarded_host_is_not_trusted(redis_server, redis: redis_lib.Redis) -> None:
    """A callback signed for another app's URL (same account, e.g. staging) cannot be replayed
    here by naming that app in X-Forwarded-Host, which Heroku's router passes through."""
    params = callback_params(call_sid(13))
    sig = sign("https://staging.example.com/twilio/status-callback", params)
    app = create_app(make_settings(redis_server.url, PUBLIC_BASE_URL="", TRUSTED_PROXY_HOPS="1"),
                     redis=redis)
    response = app.test_client().post(
        CALLBACK_PATH, data=params, base_url="http://public.example.com",
        headers={"X-Twilio-Signature": sig, "X-Forwarded-Proto": "https",
                 "X-Forwarded-Host": "staging.example.com"})
    assert response.status_code == 403
    assert redis_snapshot(redis) == {}


REFUSALS = [
    ("missing signature", lambda cb: cb.client.post(CALLBACK_PATH, data=callback_params(call_sid(20))),
     403, "invalid_signature", None),
    ("wrong signature", lambda cb: cb.post(callback_params(call_sid(21)), signature="bm9wZQ=="),
     403, "invalid_signature", None),
    ("other account's token", lambda cb: cb.post(callback_params(call_sid(22)), token="not-ours"),
     403, "invalid_signature", None),
    ("other account, validly signed",
     lambda cb: cb.post(callback_params(call_sid(23), AccountSid="AC" + "2" * 32)),
     403, "invalid_signature", None),
    ("malformed CallSid", lambda cb: cb.post(callback_params("CA123")), 400, "invalid_request",
     "CallSid"),
    ("missing CallSid",
     lambda cb: cb.post({k: v for k, v in callback_params(call_sid(24)).items() if k != "CallSid"}),
     400, "invalid_request", "CallSid"),
    ("malformed AccountSid", lambda cb: cb.post(callback_params(call_sid(25), AccountSid="ACnope")),
     400, "invalid_request", "AccountSid"),
    ("unknown CallStatus", lambda cb: cb.post(callback_params(call_sid(26), "exploded")),
     400, "invalid_request", "CallStatus"),
    ("non-numeric CallDuration",
     lambda cb: cb.post(callback_params(call_sid(27), CallDuration="4x2")),
     400, "invalid_request", "CallDuration"),
    ("body over 64 KiB",
     lambda cb: cb.post(callback_params(call_sid(28), Padding="x" * (65 * 1024))),
     413, "payload_too_large", None),
    ("JSON body", lambda cb: cb.client.post(CALLBACK_PATH, json=callback_params(call_sid(29))),
     415, "unsupported_media_type", None),
]


@pytest.mark.parametrize(("case", "send", "status", "error", "field"), REFUSALS,
                         ids=[r[0] for r in REFUSALS])
def test_refusals_write_nothing(callbacks: Callbacks, redis: redis_lib.Redis, case: str, send,
                                status: int, error: str, field: str | None) -> None:
    """Each refusal answers its status with a JSON error body and leaves Redis untouched."""
    response = send(callbacks)
    assert response.status_code == status, response.data
    body = response.get_json()
    assert body["error"] == error and body["message"]
    assert body.get("field") == field
    assert redis_snapshot(redis) == {}


def test_fifty_concurrent_callbacks_schedule_one_job(redis_server, redis: redis_lib.Redis) -> None:
    """50 identical terminal callbacks at once over real HTTP schedule exactly one job."""
    app = create_app(make_settings(redis_server.url, PUBLIC_BASE_URL=""), redis=redis)
    with LiveServer(app) as server:
        url = server.url + CALLBACK_PATH
        params = callback_params(call_sid(30))
        headers = {"X-Twilio-Signature": sign(url, params)}

        def post(_: int) -> int:
            return requests.post(url, data=params, headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(post, range(50)))
    assert statuses == [204] * 50
    assert pending_calls(redis) == [call_sid(30)]


@pytest.fixture
def own_redis() -> Iterator:
    from devtools.redis_server import RedisServer

    with RedisServer() as server:
        yield server


def test_redis_down_answers_503_then_recovers(own_redis) -> None:
    """Redis stopped: callbacks and /readyz answer 503 with Retry-After; restarted: back to work."""
    client_redis = redis_lib.Redis.from_url(own_redis.url, socket_connect_timeout=0.5,
                                            socket_timeout=0.5)
    app = create_app(make_settings(own_redis.url), redis=client_redis)
    callbacks = Callbacks(app.test_client())
    assert app.test_client().get("/readyz").status_code == 200
    own_redis.stop()
    response = callbacks.post(callback_params(call_sid(40)))
    assert response.status_code == 503
    assert response.get_json()["error"] == "unavailable"
    assert int(response.headers["Retry-After"]) > 0
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert app.test_client().get("/healthz").status_code == 200
    own_redis.start()
    assert app.test_client().get("/readyz").status_code == 200
    assert callbacks.post(callback_params(call_sid(40))).status_code == 204
    assert client_redis.zrange(INTAKE_KEY, 0, -1) == [call_sid(40).encode()]

