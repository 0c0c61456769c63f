"""The web process as deployed: gunicorn with ``gunicorn.conf.py`` and ``workers.wsgi``."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib
import requests

from devtools.processes import Process, settings_env
from devtools.redis_server import RedisServer, free_port
from devtools.web_client import callback_params, sign
from service.calls import CALLBACK_PATH
from service.intake import call_key
from service.web import REDIS_CONNECTIONS

GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "workers.wsgi:app"]


def gunicorn(env: dict[str, str], port: int) -> Process:
    return Process(GUNICORN, {**env, "PORT": str(port), "WEB_CONCURRENCY": "1"})


def test_a_bad_variable_stops_gunicorn_naming_it(redis_server: RedisServer) -> None:
    """A malformed variable stops the master at once with exit code 2 and one line naming it,
    rather than workers restarting forever behind a bound port."""
    port = free_port()
    process = gunicorn(settings_env(redis_server.url, TWILIO_ACCOUNT_SID="AC123"), port).start()
    try:
        assert process.proc is not None
        try:
            code = process.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"gunicorn still running:\n{process.output[-3000:]}") from None
        assert code == 2
        assert "callwatch: configuration error: TWILIO_ACCOUNT_SID" in process.output
        assert "Booting worker" not in process.output
    finally:
        process.close()


@pytest.fixture(scope="module")
def live_gunicorn() -> Iterator[tuple[int, redis_lib.Redis, Process]]:
    with RedisServer() as server:
        port = free_port()
        process = gunicorn(settings_env(server.url), port).start()
        try:
            process.wait_for(lambda: _answers(port), timeout=30)
            client = redis_lib.Redis.from_url(server.url)
            yield port, client, process
            client.close()
        finally:
            process.close()


def test_every_line_is_json_the_masters_included(live_gunicorn) -> None:
    """The master's lines (start, bind, worker boots) and the access log come out in the same
    JSON shape as callwatch's own; nothing is printed raw."""
    port, _, process = live_gunicorn
    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    process.wait_for(lambda: any(line.get("logger") == "gunicorn.access"
                                 for line in process.log_lines()), timeout=10)
    lines = process.log_lines()
    events = [line["event"] for line in lines if line.get("logger") == "gunicorn.error"]
    assert any(event.startswith("Listening at: ") for event in events)
    assert any(event.startswith("Booting worker") for event in events)
    raw = [text for text in process.output.splitlines() if text and not text.startswith("{")]
    assert raw == []


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("framing", [
    b"zz\r\nCallSid=CA1\r\n0\r\n\r\n",           # a chunk size that is not hex
    b"5\r\nCallSid=CA1\r\n0\r\n\r\n",             # a chunk longer than its size says
], ids=["bad-size", "missing-terminator"])
def test_broken_chunked_framing_is_a_400(live_gunicorn, framing: bytes) -> None:
    """A chunked body gunicorn cannot parse is answered 400 invalid_request and writes nothing."""
    port, store, _ = live_gunicorn
    head = (f"POST {CALLBACK_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
            "X-Twilio-Signature: bm9wZQ==\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + framing)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
    assert response.status == 400, body
    assert b'"invalid_request"' in body
    assert [k for k in store.scan_iter() if not k.startswith(b"callwatch:metrics:")] == []


def _raw(port: int, request: bytes) -> tuple[int, str, bytes]:
    """Send bytes as they are; the status, Content-Type and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.getheader("Content-Type", ""), response.read()


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /healthz?customer=secret-query HTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /twilio/status-callback?customer=secret-query HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
    (b"GET /healthz?customer=secret-query HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n", 400),
    (b"GET /" + b"a" * 5000 + b"?customer=secret-query HTTP/1.1\r\nHost: a\r\n\r\n", 414),
], ids=["bad-version", "bad-request-line", "bad-header", "line-too-long"])
def test_requests_gunicorn_refuses_get_the_json_error(live_gunicorn, request_bytes: bytes,
                                                       status: int) -> None:
    """A request gunicorn's parser refuses before the app sees it is answered with callwatch's
    JSON error body (not gunicorn's HTML page), and its warning never shows the query."""
    port, _, process = live_gunicorn
    got, content_type, body = _raw(port, request_bytes)
    assert got == status and content_type == "application/json", body
    assert json.loads(body)["error"] == "invalid_request"
    assert b"secret-query" not in body
    process.wait_for(lambda: any(line.get("event", "").startswith("Invalid request from")
                                 for line in process.log_lines()), timeout=10)
    assert "secret-query" not in process.output


@pytest.mark.parametrize(("variable", "value"), [
    ("WEB_CONCURRENCY", "0"), ("WEB_THREADS", "-3"), ("WEB_THREADS", "many"),
    ("WEB_CONNECTIONS", "0"), ("WEB_WORKER_CLASS", "eventlet"), ("HOST", "not a host!"),
    ("REDIS_URL", "redis://localhost:abc/0"), ("REDIS_URL", "redis://localhost:6379/zero"),
])
def test_bad_web_variables_stop_the_master_naming_them(redis_server: RedisServer, variable: str,
                                                       value: str) -> None:
    """WEB_CONCURRENCY=0 or abc, WEB_THREADS=-3, a bad HOST, worker class or REDIS_URL stop
    gunicorn's master with code 2 and one line naming the variable, before any worker boots."""
    env = {**settings_env(redis_server.url), variable: value}
    process = Process(GUNICORN, {**env, "PORT": str(free_port())}).start()
    try:
        assert process.proc is not None
        try:
            code = process.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"gunicorn still running:\n{process.output[-3000:]}") from None
        assert code == 2, process.output
        assert f"callwatch: configuration error: {variable}:" in process.output
        assert "Traceback" not in process.output and "Booting worker" not in process.output
    finally:
        process.close()


def test_host_narrows_the_bind_address(redis_server: RedisServer) -> None:
    """HOST=127.0.0.1 binds loopback only (a laptop), instead of every interface."""
    port = free_port()
    env = {**settings_env(redis_server.url), "HOST": "127.0.0.1", "PORT": str(port),
           "WEB_CONCURRENCY": "1"}
    process = Process(GUNICORN, env).start()
    try:
        process.wait_for(lambda: _answers(port), timeout=30)
        listening = [line["event"] for line in process.log_lines()
                     if line.get("event", "").startswith("Listening at: ")]
        assert listening and listening[0].startswith(f"Listening at: http://127.0.0.1:{port} ")
    finally:
        process.close()


def test_a_non_numeric_web_concurrency_stops_gunicorn_before_any_worker(
        redis_server: RedisServer) -> None:
    """WEB_CONCURRENCY=abc stops gunicorn at once, the variable named in what it prints: gunicorn
    reads it while importing its own settings, before gunicorn.conf.py can check it."""
    env = {**settings_env(redis_server.url), "WEB_CONCURRENCY": "abc", "PORT": str(free_port())}
    process = Process(GUNICORN, env).start()
    try:
        assert process.proc is not None
        assert process.proc.wait(timeout=30) != 0
        assert "WEB_CONCURRENCY" in process.output and "Booting worker" not in process.output
    finally:
        process.close()


def test_a_burst_of_callbacks_holds_a_few_redis_connections_not_one_each(live_gunicorn) -> None:
    """60 callbacks on 60 connections at once (a storm's worth of calls ending together) are
    all admitted over a few Redis connections, not one per client connection: a hosted
    Redis allows only tens of clients (Heroku's smallest plans: 20)."""
    port, client, _ = live_gunicorn
    url = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    sids = [f"CA{n:032x}" for n in range(1000, 1060)]

    def post(sid: str) -> int:
        params = callback_params(sid)
        return requests.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)},
                             timeout=10).status_code

    with ThreadPoolExecutor(max_workers=len(sids)) as pool:
        statuses = list(pool.map(post, sids))
    assert statuses == [204] * len(sids)
    assert all(client.exists(call_key(sid)) for sid in sids)
    own = client.client_id()
    others = [c for c in client.client_list() if int(c["id"]) != own]
    assert len(others) <= REDIS_CONNECTIONS, others


def test_a_client_sending_back_to_back_does_not_keep_the_worker_to_itself(live_gunicorn) -> None:
    """One connection pipelines 1000 requests in one write: gunicorn reads each next request
    from its buffer without waiting, so without a turn per request that connection held the
    worker until all 1000 were answered while another client's request waited (under wrk,
    some callbacks waited seconds). The other client is answered while the 1000 are still
    being served."""
    port, _, process = live_gunicorn
    count = 1000
    already = len(process.log_lines())
    answers = []

    def read_hog_answers(hog: socket.socket) -> None:  # so the worker never waits to write
        received = b""
        while received.count(b"HTTP/1.1 404") < count:
            chunk = hog.recv(1 << 16)
            if not chunk:
                break
            received += chunk
        answers.append(received.count(b"HTTP/1.1 404"))

    with socket.create_connection(("127.0.0.1", port), timeout=30) as other, \
            socket.create_connection(("127.0.0.1", port), timeout=30) as hog:
        reader = threading.Thread(target=read_hog_answers, args=(hog,), daemon=True)
        reader.start()
        hog.sendall(b"GET /back-to-back HTTP/1.1\r\nHost: a\r\n\r\n" * count)
        other.sendall(b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        answer = http.client.HTTPResponse(other)
        answer.begin()
        assert answer.status == 200, answer.read()
        reader.join(timeout=30)
    assert answers == [count]

    def access_paths() -> list[str]:
        return [f"{line['method']} {line['path']}" for line in process.log_lines()[already:]
                if line.get("logger") == "gunicorn.access"]

    process.wait_for(lambda: "GET /readyz" in access_paths()
                     and access_paths().count("GET /back-to-back") == count, timeout=10)
    paths = [path for path in access_paths() if path in ("GET /readyz", "GET /back-to-back")]
    assert paths.index("GET /readyz") < count // 2, paths.index("GET /readyz")
