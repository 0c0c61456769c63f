"""A deadline on the whole exchange (``service.http.headers_by`` with the worker's session):
a peer that drips its answer, its TLS handshake, or its answer through a proxy is given up
at the deadline, not at its own pace (real sockets on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
def _peer(serve: Callable[[socket.socket, int], None]) -> Iterator[str]:
    """A raw loopback peer: ``serve(connection, n)`` for the n-th connection (from 0)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    def accept() -> None:
        for n in range(4):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn, n), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def _drip(conn: socket.socket, head: bytes, byte: bytes) -> None:
    """Read the request, send ``head``, then ``byte`` every 50 ms for 10 s."""
    with conn:
        conn.recv(65536)
        conn.sendall(head)
        for _ in range(200):
            time.sleep(0.05)
            try:
                conn.sendall(byte)
            except OSError:
                return


def _drip_tls(conn: socket.socket, n: int) -> None:
    """Answer a TLS ClientHello with a record header announcing 16 KB, then one byte of it
    every 50 ms: a handshake no single read's timeout ends."""
    _drip(conn, b"\x16\x03\x03\x40\x00", b"\x00")


def test_a_dripping_tls_handshake_ends_at_the_deadline(helper_runs: list[int]) -> None:
    """A new HTTPS connection whose handshake drips is given up at the deadline (a new TLS
    connection is made in a helper thread)."""
    session = http_session({})
    with _peer(_drip_tls) as url:
        started = time.monotonic()
        with pytest.raises(AnswerTooSlow):
            headers_by(DEADLINE_S, _get(session, url.replace("http:", "https:") + "/"), session)
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
    connections: list[int] = []

    def serve(conn: socket.socket, n: int) -> None:
        connections.append(n)
        with conn:
            for _ in range(2):
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    session = http_session({})
    with _peer(serve) as url:
        for _ in range(2):
            with headers_by(DEADLINE_S * 10, _get(session, url + "/page"), session) as response:
                assert read_capped(response, 1000) == body
    assert connections == [0]
    assert helper_runs == []


def test_after_a_slow_answer_the_next_exchange_gets_a_new_connection() -> None:
    """The connection a dripping answer was given up on is not used again: the next
    exchange opens another and gets its answer."""
    body = b"{}"

    def serve(conn: socket.socket, n: int) -> None:
        if n == 0:
            _drip(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"x")
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body)

    session = http_session({})
    with _peer(serve) as url:
        with pytest.raises(AnswerTooSlow):
            headers_by(DEADLINE_S, _get(session, url + "/slow"), session)
        with headers_by(DEADLINE_S * 10, _get(session, url + "/next"), session) as response:
            assert read_capped(response, 100) == body


def test_a_peer_that_does_not_read_the_request_is_given_up_by_the_deadline() -> None:
    """A POST larger than the sockets' buffers to a peer that never reads it ends by the
    deadline (the send is bounded by the time left), not after the sink's timeout."""
    def serve(conn: socket.socket, n: int) -> None:
        with conn:
            time.sleep(GIVEN_UP_WITHIN_S + 2)

    session = http_session({})
    with _peer(serve) as url:
        started = time.monotonic()
        with pytest.raises((AnswerTooSlow, requests.RequestException)):
            headers_by(DEADLINE_S, lambda: session.post(
                url + "/hook", data=b"x" * (64 * 1024 * 1024), timeout=(5, 5),
                allow_redirects=False, stream=True), session)
        took = time.monotonic() - started
    assert took < GIVEN_UP_WITHIN_S
