"""The status-callback endpoint under hostile input: fuzzed requests, forgeries and replays.

Properties pinned here, on a private Redis:

- whatever arrives (bytes, media types, headers, query strings, methods, sizes,
  chunked bodies over a real socket) the answer is never a 5xx, and a request
  without a valid signature makes Redis run no write command at all;
- a validly signed callback with garbage fields answers 400 naming a field that is
  really wrong, 403 for another account, or 204 when every field is good;
- a signature made for another URL, another token or other fields is refused and
  changes nothing.

"No write" is measured with Redis's own per-command counters (``INFO commandstats``),
which also see writes that were later undone; only ``HINCRBYFLOAT`` (the buffered
metrics, flushed from a background thread) and the tests' own ``FLUSHDB`` are left out.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from devtools.redis_server import RedisServer
from devtools.web_client import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALLBACK_PATH,
    PUBLIC_BASE,
    Callbacks,
    LiveServer,
    call_sid,
    callback_params,
    make_settings,
    sign,
)
from service.calls import CALL_STATUSES, TERMINAL_STATUSES
from service.intake import INTAKE_KEY, call_key
from service.web import MAX_BODY_BYTES, create_app

FORM = "application/x-www-form-urlencoded"
METRICS_PREFIX = b"callwatch:metrics:"
UNCOUNTED_WRITES = {"hincrbyfloat", "flushdb", "flushall"}
#: Commands that write without the ``write`` flag: Lua, functions, transactions.
SCRIPTED_WRITES = {"eval", "evalsha", "fcall", "exec"}
FUZZ = settings(deadline=None, max_examples=60, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# --- fixtures and helpers ---------------------------------------------------------


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    """A Redis only this module talks to, so its command counters are ours alone."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def store(private_redis: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(private_redis.url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(params=["public_base_url", "trusted_proxy"])
def app(request: pytest.FixtureRequest, private_redis: RedisServer,
        store: redis_lib.Redis) -> Flask:
    """The app as deployed behind PUBLIC_BASE_URL, or behind one trusted proxy without it."""
    if request.param == "public_base_url":
        settings_ = make_settings(private_redis.url)
    else:
        settings_ = make_settings(private_redis.url, PUBLIC_BASE_URL="", TRUSTED_PROXY_HOPS="1")
    return create_app(settings_, redis=store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def public_app(private_redis: RedisServer, store: redis_lib.Redis) -> Flask:
    return create_app(make_settings(private_redis.url), redis=store)


@pytest.fixture
def callbacks(public_app: Flask) -> Callbacks:
    return Callbacks(public_app.test_client())


_writers: set[str] = set()


def write_calls(redis: redis_lib.Redis) -> int:
    """How many write commands Redis has run so far (metrics and test flushes excepted)."""
    if not _writers:
        flagged = {name for name, info in redis.command().items() if "write" in info["flags"]}
        _writers.update((flagged | SCRIPTED_WRITES) - UNCOUNTED_WRITES)
    stats = redis.info("commandstats")
    return sum(entry["calls"] for key, entry in stats.items()
               if key.removeprefix("cmdstat_") in _writers)


def data_keys(redis: redis_lib.Redis) -> list[bytes]:
    return [k for k in redis.scan_iter() if not k.startswith(METRICS_PREFIX)]


def assert_error_body(response: Any, status: int) -> dict[str, str]:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert isinstance(body, dict) and body["error"] and body["message"], response.data
    return body


# --- strategies -----------------------------------------------------------------

latin1_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                    exclude_characters="\x7f"), max_size=60)
content_types = st.one_of(
    st.none(),
    st.sampled_from([
        FORM, f"{FORM}; charset=utf-8", f"{FORM}; charset=latin-1", f"{FORM}; charset=utf-16",
        FORM.upper(), f"{FORM};;", "application/json", "application/json; charset=utf-8",
        "multipart/form-data; boundary=xyz", "multipart/form-data", "text/plain",
        "text/plain; charset=utf-16", "", "*/*", "application/octet-stream",
    ]),
    latin1_text,
)
signatures = st.one_of(
    st.none(),
    latin1_text,
    st.binary(min_size=20, max_size=20).map(lambda b: base64.b64encode(b).decode()),
    st.just(sign(PUBLIC_BASE + CALLBACK_PATH, callback_params(call_sid(1)))),
)
SKIPPED_HEADERS = {"content-length", "content-type", "transfer-encoding", "host",
                   "x-twilio-signature"}
header_sets = st.dictionaries(
    st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,24}\Z").filter(
        lambda name: name.lower() not in SKIPPED_HEADERS),
    latin1_text, max_size=6,
) | st.fixed_dictionaries({}, optional={
    "X-Forwarded-Host": latin1_text, "X-Forwarded-Proto": st.sampled_from(["https", "http", "ftp", ""]),
    "X-Forwarded-For": latin1_text, "X-Forwarded-Port": latin1_text,
    "I-Twilio-Idempotency-Token": latin1_text,
})
query_parts = st.one_of(
    st.sampled_from(["a=b", "%", "%zz", "%ff%fe", "%C3%BC", "%00", "x=%80", "&&", "=", "+",
                     "CallSid=" + call_sid(2), "CallStatus=completed",
                     "AccountSid=" + ACCOUNT_SID, "bodySHA256=abc"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="#\x7f"),
            max_size=20),
)
query_strings = st.lists(query_parts, max_size=5).map("&".join)
bodies = st.one_of(
    st.binary(max_size=512),
    st.just(urlencode(callback_params(call_sid(3))).encode()),
    st.dictionaries(latin1_text, latin1_text, max_size=5).map(lambda d: urlencode(d).encode()),
    st.integers(MAX_BODY_BYTES - 8, MAX_BODY_BYTES + 8).map(lambda n: b"x=" + b"a" * (n - 2)),
)


# --- arbitrary requests, no signature -----------------------------------------------


@FUZZ
@given(method=st.sampled_from(["POST", "GET", "HEAD"]), body=bodies, content_type=content_types,
       headers=header_sets, signature=signatures, query=query_strings)
def test_arbitrary_requests_never_5xx_never_write(client: FlaskClient, store: redis_lib.Redis,
                                                   method: str, body: bytes,
                                                   content_type: str | None,
                                                   headers: dict[str, str],
                                                   signature: str | None, query: str) -> None:
    """Any unsigned request is refused with 403/413/415 and a JSON error; Redis sees no write."""
    sent = dict(headers)
    if signature is not None:
        sent["X-Twilio-Signature"] = signature
    before = write_calls(store)
    response = client.open(CALLBACK_PATH, method=method, data=body, query_string=query,
                           headers=sent, content_type=content_type)
    assert response.status_code in (403, 413, 415), response.data
    if method != "HEAD":
        body_json = assert_error_body(response, response.status_code)
        assert "field" not in body_json
    assert write_calls(store) == before
    assert data_keys(store) == []


@settings(FUZZ, max_examples=30)
@given(size=st.one_of(st.sampled_from([MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1]),
                      st.integers(MAX_BODY_BYTES - 2048, MAX_BODY_BYTES + 2048)),
       n=st.integers(1, 10**6))
def test_size_limit_is_exactly_64_kib(callbacks: Callbacks, store: redis_lib.Redis, size: int,
                                      n: int) -> None:
    """A signed callback of up to 64 KiB is accepted; one byte more is 413 and writes nothing."""
    store.flushdb()
    params = callback_params(call_sid(n))
    head = urlencode(params).encode() + b"&Padding="
    assume(size >= len(head))
    params["Padding"] = "x" * (size - len(head))
    body = urlencode(params).encode()
    assert len(body) == size
    before = write_calls(store)
    response = callbacks.client.post(
        CALLBACK_PATH, data=body, content_type=FORM,
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE + CALLBACK_PATH, params)})
    if size <= MAX_BODY_BYTES:
        assert response.status_code == 204, response.data
        assert store.exists(call_key(call_sid(n)))
    else:
        assert_error_body(response, 413)
        assert write_calls(store) == before


# --- validly signed, garbage fields ------------------------------------------------------

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
ACCOUNT = re.compile(r"AC[0-9a-fA-F]{32}")
COUNT = re.compile(r"[0-9]{1,9}")
REQUIRED = ("CallSid", "AccountSid", "CallStatus")
TEXT_FIELDS = ("Direction", "From", "To", "Timestamp")
COUNT_FIELDS = ("CallDuration", "SipResponseCode", "SequenceNumber")


def wrong_fields(fields: dict[str, str]) -> set[str]:
    """The fields a correct validator must refuse, from the contract rather than the code."""
    wrong = {name for name in REQUIRED if not fields.get(name)}
    for name, value in fields.items():
        if value == "":
            continue
        malformed = (
            len(value) > 256
            or (name in ("CallSid", "ParentCallSid") and not CALL_SID.fullmatch(value))
            or (name == "AccountSid" and not ACCOUNT.fullmatch(value))
            or (name == "CallStatus" and value not in CALL_STATUSES)
            or (name in COUNT_FIELDS and not COUNT.fullmatch(value))
        )
        if malformed:
            wrong.add(name)
    return wrong & {*REQUIRED, "ParentCallSid", *TEXT_FIELDS, *COUNT_FIELDS}


ODD_VALUES = ["", " ", "0", "-1", "1e3", "4x2", "\u0663", "\uff11\uff12", "\x00", "999999999",
              "1234567890", "null", "CA", "AC", "x" * 257, "\u00e9" * 300]
sids = st.integers(0, 2**128 - 1).map(lambda n: f"CA{n:032x}")


def field(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(valid, valid, st.sampled_from(ODD_VALUES), st.text(max_size=40),
                     valid.map(str.upper), valid.map(lambda v: " " + v))


garbage_callbacks = st.fixed_dictionaries(
    {},
    optional={
        "CallSid": field(sids),
        "AccountSid": field(st.sampled_from([ACCOUNT_SID, ACCOUNT_SID, "AC" + "2" * 32])),
        "CallStatus": field(st.sampled_from(sorted(CALL_STATUSES))),
        "ParentCallSid": field(sids),
        "CallDuration": field(st.integers(0, 10**10).map(str)),
        "SipResponseCode": field(st.sampled_from(["200", "404", "486", "503"])),
        "SequenceNumber": field(st.integers(0, 99).map(str)),
        "Direction": field(st.sampled_from(["inbound", "outbound-api", "outbound-dial"])),
        "From": field(st.sampled_from(["+14155550123", "client:alice", "sip:bob@example.com"])),
        "To": field(st.just("+14155550199")),
        "Timestamp": field(st.just("Fri, 27 Nov 2026 10:15:00 +0000")),
        "ApiVersion": st.text(max_size=300),
        "Unknown-Field": st.text(max_size=300),
    },
)


@settings(FUZZ, max_examples=120)
@given(fields=garbage_callbacks, method=st.sampled_from(["POST", "GET"]))
def test_signed_garbage_fields_answer_400_403_or_204(callbacks: Callbacks, store: redis_lib.Redis,
                                                     fields: dict[str, str], method: str) -> None:
    """Signed callbacks: a wrong field is 400 naming it, another account 403, else 204; never 5xx."""
    store.flushdb()
    before = write_calls(store)
    if method == "POST":  # explicit media type: an empty form would otherwise carry none
        response = callbacks.post(fields, content_type=FORM)
    else:  # (Callbacks.get would sign a bare trailing "?" for an empty query)
        path = CALLBACK_PATH + (f"?{urlencode(fields)}" if fields else "")
        response = callbacks.client.get(
            path, headers={"X-Twilio-Signature": sign(PUBLIC_BASE + path, {})})
    wrong = wrong_fields(fields)
    if wrong:
        body = assert_error_body(response, 400)
        assert body["error"] == "invalid_request" and body["field"] in wrong, (body, wrong)
    elif fields["AccountSid"] != ACCOUNT_SID:
        assert assert_error_body(response, 403)["error"] == "invalid_signature"
    else:
        assert response.status_code == 204, response.data
        if fields["CallStatus"] in TERMINAL_STATUSES:
            assert store.exists(call_key(fields["CallSid"]))
            return
    assert write_calls(store) == before
    assert data_keys(store) == []


@pytest.mark.parametrize("name", ["CallSid", "ParentCallSid", "AccountSid"])
def test_sid_with_trailing_newline_is_refused(callbacks: Callbacks, store: redis_lib.Redis,
                                              name: str) -> None:
    """A SID followed by a newline is malformed (400 naming it), not scheduled as analyze-CA…\\n."""
    params = callback_params(call_sid(50), ParentCallSid=call_sid(51))
    params[name] += "\n"
    body = assert_error_body(callbacks.post(params), 400)
    assert body["field"] == name
    assert data_keys(store) == []


# --- chunked bodies over a real socket ---------------------------------------------------


def raw_post(port: int, body_chunks: list[bytes], headers: dict[str, str]) -> tuple[int, bytes]:
    """POST with ``Transfer-Encoding: chunked`` (no Content-Length) over a plain socket."""
    lines = [f"POST {CALLBACK_PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Transfer-Encoding: chunked", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    wire = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    for chunk in body_chunks:
        if chunk:
            wire += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    wire += b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # the server may answer (413) and close before reading everything
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(wire)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points)]


@pytest.fixture
def live(public_app: Flask) -> Iterator[LiveServer]:
    with LiveServer(public_app) as server:
        yield server


@settings(FUZZ, max_examples=15)
@given(cuts=st.lists(st.integers(0, 10**6), max_size=6), n=st.integers(1, 10**6),
       signed=st.booleans())
def test_chunked_bodies_over_a_socket(live: LiveServer, store: redis_lib.Redis, cuts: list[int],
                                      n: int, signed: bool) -> None:
    """Chunked bodies however split: signed ones are scheduled, unsigned ones 403 and no write."""
    store.flushdb()
    params = callback_params(call_sid(n))
    body = urlencode(params).encode()
    signature = sign(PUBLIC_BASE + CALLBACK_PATH, params) if signed else "bm9wZQ=="
    before = write_calls(store)
    status, payload = raw_post(live.port, split(body, cuts),
                               {"Content-Type": FORM, "X-Twilio-Signature": signature})
    if signed:
        assert status == 204, payload
        assert store.exists(call_key(call_sid(n)))
    else:
        assert status == 403, payload
        assert write_calls(store) == before


def oversize_chunked(live: LiveServer, signed: bool) -> int:
    params = callback_params(call_sid(70), Padding="x" * MAX_BODY_BYTES)
    body = urlencode(params).encode()
    signature = sign(PUBLIC_BASE + CALLBACK_PATH, params) if signed else "bm9wZQ=="
    status, _ = raw_post(live.port, split(body, [1000, 40000]),
                         {"Content-Type": FORM, "X-Twilio-Signature": signature})
    return status


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_chunked_body_over_64_kib_writes_nothing(live: LiveServer, store: redis_lib.Redis,
                                                 signed: bool) -> None:
    """A chunked body over 64 KiB (no Content-Length) is refused with a 4xx and writes nothing."""
    before = write_calls(store)
    assert oversize_chunked(live, signed) in (403, 413)
    assert write_calls(store) == before and data_keys(store) == []


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_chunked_body_over_64_kib_is_413(live: LiveServer, signed: bool) -> None:
    """A chunked body over 64 KiB answers 413 like one with a Content-Length does."""
    assert oversize_chunked(live, signed) == 413


# --- forgeries and replays ---------------------------------------------------------------

SID = call_sid(60)
PARAMS = callback_params(SID)
OTHER_URLS = {
    "other host": "https://evil.example.com" + CALLBACK_PATH,
    "other scheme": "http://alerts.example.com" + CALLBACK_PATH,
    "other path": PUBLIC_BASE + "/twilio/other-callback",
    "other query": PUBLIC_BASE + CALLBACK_PATH + "?tenant=a",
    "path prefix": PUBLIC_BASE + "/prefix" + CALLBACK_PATH,
}


@pytest.mark.parametrize("url", OTHER_URLS.values(), ids=OTHER_URLS.keys())
def test_signature_for_another_url_refused(callbacks: Callbacks, store: redis_lib.Redis,
                                           url: str) -> None:
    """A callback signed for another host, scheme, path or query is refused and writes nothing."""
    before = write_calls(store)
    response = callbacks.post(PARAMS, signature=sign(url, PARAMS))
    assert assert_error_body(response, 403)["error"] == "invalid_signature"
    assert write_calls(store) == before and data_keys(store) == []


def test_query_added_after_signing_refused(callbacks: Callbacks, store: redis_lib.Redis) -> None:
    """A signature over the bare URL does not cover a query string added in transit."""
    before = write_calls(store)
    response = callbacks.post(PARAMS, query="tenant=a",
                              signature=sign(PUBLIC_BASE + CALLBACK_PATH, PARAMS))
    assert_error_body(response, 403)
    assert write_calls(store) == before and data_keys(store) == []


TAMPERS = {
    "CallStatus changed": lambda p: {**p, "CallStatus": "failed"},
    "AccountSid changed": lambda p: {**p, "AccountSid": "AC" + "2" * 32},
    "CallSid changed": lambda p: {**p, "CallSid": call_sid(61)},
    "CallDuration changed": lambda p: {**p, "CallDuration": "4200"},
    "field added": lambda p: {**p, "SipResponseCode": "486"},
    "field removed": lambda p: {k: v for k, v in p.items() if k != "To"},
    "field emptied": lambda p: {**p, "From": ""},
}


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_replay_with_changed_fields_refused(callbacks: Callbacks, store: redis_lib.Redis,
                                            tamper: Any, method: str) -> None:
    """A genuine signature replayed over changed fields is refused and writes nothing."""
    before = write_calls(store)
    changed = tamper(PARAMS)
    if method == "POST":
        response = callbacks.post(changed, signature=sign(PUBLIC_BASE + CALLBACK_PATH, PARAMS))
    else:
        genuine = sign(PUBLIC_BASE + CALLBACK_PATH + "?" + urlencode(PARAMS), {})
        response = callbacks.client.get(CALLBACK_PATH + "?" + urlencode(changed),
                                        headers={"X-Twilio-Signature": genuine})
    assert assert_error_body(response, 403)["error"] == "invalid_signature"
    assert write_calls(store) == before and data_keys(store) == []


def test_repeated_field_with_another_value_refused(callbacks: Callbacks,
                                                   store: redis_lib.Redis) -> None:
    """Adding a second CallStatus value to a signed body breaks the signature."""
    before = write_calls(store)
    body = urlencode(PARAMS).encode() + b"&CallStatus=failed"
    response = callbacks.client.post(
        CALLBACK_PATH, data=body, content_type=FORM,
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE + CALLBACK_PATH, PARAMS)})
    assert_error_body(response, 403)
    assert write_calls(store) == before and data_keys(store) == []


def test_post_signature_replayed_as_get_refused(callbacks: Callbacks,
                                                store: redis_lib.Redis) -> None:
    """A POST's signature does not validate the same fields sent as a GET query."""
    before = write_calls(store)
    response = callbacks.client.get(
        CALLBACK_PATH + "?" + urlencode(PARAMS),
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE + CALLBACK_PATH, PARAMS)})
    assert_error_body(response, 403)
    assert write_calls(store) == before and data_keys(store) == []


@pytest.mark.parametrize("token", ["another-accounts-token", AUTH_TOKEN.upper(), ""])
def test_other_token_refused(callbacks: Callbacks, store: redis_lib.Redis, token: str) -> None:
    """A callback signed with any token but ours is refused and writes nothing."""
    before = write_calls(store)
    signature = sign(PUBLIC_BASE + CALLBACK_PATH, PARAMS, token) if token else ""
    response = callbacks.post(PARAMS, signature=signature)
    assert assert_error_body(response, 403)["error"] == "invalid_signature"
    assert write_calls(store) == before and data_keys(store) == []


def test_exact_replay_schedules_once(callbacks: Callbacks, store: redis_lib.Redis) -> None:
    """The same signed callback replayed is accepted as a duplicate: still one job."""
    assert callbacks.post(PARAMS).status_code == 204
    keys = sorted(data_keys(store))
    for _ in range(3):
        assert callbacks.post(PARAMS).status_code == 204
    assert sorted(data_keys(store)) == keys
    assert store.zrange(INTAKE_KEY, 0, -1) == [SID.encode()]
