"""A deadline on the whole exchange (``service.http.headers_by`` with the worker's session):
a peer that drips its answer, its TLS handshake, or its answer through a proxy is given up
at the deadline, not at its own pace (real sockets on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from devtools.hostile_peers import HostilePeer, drip, drip_head
from service import http_deadline
from service.http import AnswerTooSlow, headers_by, read_capped
from service.http_session import http_session

DEADLINE_S = 0.5
#: Far inside what the peers would hold a client for, far above the deadline.
GIVEN_UP_WITHIN_S = 3.0


@pytest.fixture
def helper_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many tasks went to a helper thread (the bound in place needs none)."""
    runs: list[int] = []
    real = http_deadline._helpers

    class Counted:
        def run(self, task: Callable[[], None]) -> None:
            runs.append(1)
            real().run(task)

    monkeypatch.setattr(http_deadline, "_helpers", Counted)
    return runs


def _get(session: requests.Session, url: str) -> Callable[[], requests.Response]:
    return lambda: session.get(url, timeout=(5, 5), allow_redirects=False, stream=True)


def test_dripping_headers_end_at_the_deadline_without_a_helper_thread(
        helper_runs: list[int]) -> None:
    """Headers dripped a byte every 50 ms (no read ever times out) end at the deadline,
    on the caller's own thread."""
    session = http_session({})
    with HostilePeer(drip_head(0.05)) as peer:
        started = time.monotonic()
        with pytest.raises(AnswerTooSlow):
            headers_by(DEADLINE_S, _get(session, f"{peer.url}/slow"), session)
        took = time.monotonic() - started
    assert DEADLINE_S <= took < GIVEN_UP_WITHIN_S
    assert helper_runs == []


def test_a_dripping_body_ends_at_the_exchanges_deadline() -> None:
    """An answer whose headers come at once and whose body drips is given up at the
    exchange's deadline, even by a reader given no deadline of its own."""
    session = http_session({})
    with HostilePeer(drip(0.05, announced=100_000)) as peer:
        started = time.monotonic()
        response = headers_by(DEADLINE_S, _get(session, f"{peer.url}/page"), session)
        with response, pytest.raises(AnswerTooSlow):
            read_capped(response, 1_000_000)
        took = time.monotonic() - started
    assert DEADLINE_S <= took < GIVEN_UP_WITHIN_S


@contextmanager
def _dripping_tls_peer() -> Iterator[int]:
    """A TCP peer that answers a TLS ClientHello with a record header announcing 16 KB,
    then one byte of it every 50 ms: a handshake no read timeout ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"\x16\x03\x03\x40\x00")
            while not stop.wait(0.05):
                try:
                    conn.sendall(b"\x00")
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_a_dripping_tls_handshake_ends_at_the_deadline(helper_runs: list[int]) -> None:
    """A new HTTPS connection whose handshake drips is given up at the deadline (the
    handshake is made in a helper thread)."""
    session = http_session({})
    with _dripping_tls_peer() as port:
        started = time.monotonic()
        with pytest.raises(AnswerTooSlow):
            headers_by(DEADLINE_S, _get(session, f"https://127.0.0.1:{port}/"), session)
        took = time.monotonic() - started
    assert DEADLINE_S <= took < GIVEN_UP_WITHIN_S
    assert helper_runs == [1]


def test_an_answer_dripped_through_a_proxy_ends_at_the_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy set, requests' own way is taken; its exchange ends at the deadline too."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with HostilePeer(drip_head(0.05)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        session = http_session({"HTTP_PROXY": proxy.url})
        started = time.monotonic()
        with pytest.raises(AnswerTooSlow):
            headers_by(DEADLINE_S, _get(session, "http://receiver.invalid/hook"), session)
        took = time.monotonic() - started
        assert proxy.requests and proxy.requests[0].startswith(b"GET http://receiver.invalid/hook")
    assert DEADLINE_S <= took < GIVEN_UP_WITHIN_S


def test_a_prompt_answer_is_whole_and_its_connection_kept(helper_runs: list[int]) -> None:
    """Within the deadline nothing changes: the whole body, and the next exchange over the
    same kept-alive connection."""
    body = b'{"events": []}'
    connections: list[Any] = []

    def serve(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        connections.append(conn)
        with conn:
            for _ in range(2):
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    thread = threading.Thread(target=serve, args=(listener,), daemon=True)
    thread.start()
    session = http_session({})
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/page"
    try:
        for _ in range(2):
            with headers_by(DEADLINE_S * 10, _get(session, url), session) as response:
                assert read_capped(response, 1000) == body
    finally:
        listener.close()
        thread.join(timeout=5)
    assert len(connections) == 1
    assert helper_runs == []
