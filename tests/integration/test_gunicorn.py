"""The web process as deployed: gunicorn with ``gunicorn.conf.py`` and ``service.web.wsgi``."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis as redis_lib
import requests

from devtools.redis_server import RedisServer, free_port
from service.calls import CALLBACK_PATH
from tests.processes import Process, settings_env

GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "service.web.wsgi:app"]


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
