"""The worker's HTTP session sends what requests sends, and answers and fails as requests
does, whichever way a request takes (``service.http_session``): a real server on loopback
records each request as it arrives on the wire."""

from __future__ import annotations

import base64
import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from service.http import read_capped
from service.http_session import LeanSession, http_session


class _Recorder(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; each request is recorded with the connection it came on."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        return None

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append({
            "connection": id(self.connection), "line": self.requestline,
            "headers": sorted((name.lower(), value) for name, value in self.headers.items()),
            "body": body})
        if self.path.startswith("/hang"):
            self.server.release.wait(5)
            return
        answer = b'{"ok": true, "path": "%s"}' % self.path.encode()
        extra = b"Set-Cookie: lb=abc; Path=/\r\nRetry-After: 7\r\n" if "cookie" in self.path else b""
        self.wfile.write(b"HTTP/1.1 201 Made\r\nContent-Type: application/json; charset=utf-8\r\n"
                         b"X-Twice: 1\r\nX-Twice: 2\r\n" + extra
                         + b"Content-Length: %d\r\n\r\n" % len(answer) + answer)

    do_GET = do_POST = do_PUT = _answer


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.seen: list[dict[str, Any]] = []
        self.release = threading.Event()


@pytest.fixture
def server() -> Iterator[_Server]:
    served = _Server()
    thread = threading.Thread(target=served.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.release.set()
        served.shutdown()
        served.server_close()


def _plain_requests() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def _exchange(session: requests.Session, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("allow_redirects", False)
    kwargs.setdefault("stream", True)
    with session.request(method, url, timeout=(2, 2), **kwargs) as response:
        return {"status": response.status_code, "reason": response.reason, "url": response.url,
                "headers": dict(response.headers), "encoding": response.encoding,
                "body": read_capped(response, 1000)}


def _both(server: _Server, method: str, path: str, *, short_way: bool = True, **kwargs: Any) -> None:
    """The same request through the lean session and through plain requests: the same bytes
    reach the server and the same answer comes back (``short_way``: the lean session's)."""
    url = f"http://127.0.0.1:{server.server_port}{path}"
    session = http_session({})
    lean = _exchange(session, method, url, **kwargs)
    assert bool(session._pools) is short_way  # type: ignore[attr-defined]
    plain = _exchange(_plain_requests(), method, url, **kwargs)
    assert lean == plain
    first, second = server.seen[-2:]
    assert {key: first[key] for key in ("line", "headers", "body")} == \
        {key: second[key] for key in ("line", "headers", "body")}


def test_a_get_with_params_and_basic_auth_is_sent_as_requests_sends_it(server: _Server) -> None:
    _both(server, "GET", "/v1/Voice/CA1/Events?Existing=1",
          params={"PageSize": "100", "Edge": ["sdk_edge", "client_edge"], "Skip": None, "é": "ü"},
          auth=("ACxxxxxxxx", "tokén"), headers={"User-Agent": "callwatch/test"})
    line = server.seen[-1]["line"]
    assert line.startswith("GET /v1/Voice/CA1/Events?Existing=1&PageSize=100&Edge=sdk_edge&Edge=client_edge&")
    basic = base64.b64encode("ACxxxxxxxx:tokén".encode("latin-1")).decode()
    assert ("authorization", f"Basic {basic}") in server.seen[-1]["headers"]


def test_a_post_of_bytes_with_headers_is_sent_as_requests_sends_it(server: _Server) -> None:
    body = '{"text": "naïve"}'.encode()
    _both(server, "POST", "/hooks/x", data=body,
          headers={"Content-Type": "application/json", "webhook-id": "msg_1", "Accept": None})
    assert server.seen[-1]["body"] == body
    assert ("content-length", str(len(body))) in server.seen[-1]["headers"]
    assert not any(name == "accept" for name, _ in server.seen[-1]["headers"])
    _both(server, "POST", "/empty")
    assert ("content-length", "0") in server.seen[-1]["headers"]


def test_urls_requests_would_rewrite_take_its_way_and_arrive_the_same(server: _Server) -> None:
    for path in ("/a%20b/c", "/a/./b/../c", "/ü", "/q?x=<y>", "/p?"):
        _both(server, "GET", path, short_way=False)
    _both(server, "GET", "/followed", short_way=False, allow_redirects=True)


def test_the_lean_way_keeps_its_connection_alive(server: _Server) -> None:
    session = http_session({})
    url = f"http://127.0.0.1:{server.server_port}/page"
    for _ in range(3):
        _exchange(session, "GET", url)
    assert len({seen["connection"] for seen in server.seen}) == 1
    assert session._pools, "the request went requests' long way"  # type: ignore[attr-defined]


def test_no_cookie_is_kept_on_either_way(server: _Server) -> None:
    session = http_session({})
    url = f"http://127.0.0.1:{server.server_port}/cookie"
    _exchange(session, "GET", url)
    _exchange(session, "GET", url, allow_redirects=True, stream=False)  # requests' own way
    _exchange(session, "GET", url)
    assert len(session.cookies) == 0
    assert not any(name == "cookie" for seen in server.seen for name, _ in seen["headers"])


def test_errors_are_requests_errors(server: _Server) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for session in (http_session({}), _plain_requests()):
        with pytest.raises(requests.ConnectionError):
            session.get(f"http://127.0.0.1:{port}/", timeout=(1, 1), allow_redirects=False, stream=True)
        with pytest.raises(requests.ReadTimeout):
            session.get(f"http://127.0.0.1:{server.server_port}/hang", timeout=(1, 0.2),
                        allow_redirects=False, stream=True)
        with pytest.raises(requests.exceptions.InvalidHeader):
            session.post(f"http://127.0.0.1:{server.server_port}/x", data=b"", timeout=(1, 1),
                         headers={"X-Bad": "a\r\nInjected: yes"}, allow_redirects=False, stream=True)
    assert not any(("injected", "yes") in seen["headers"] for seen in server.seen)


def test_an_evicted_pool_is_looked_up_again(server: _Server) -> None:
    """The adapter keeps a few origins' pools and closes the oldest: nothing is lost."""
    session = LeanSession()
    session.trust_env = False
    url = f"http://127.0.0.1:{server.server_port}/again"
    _exchange(session, "GET", url)
    session.get_adapter(url).poolmanager.clear()  # as an eviction closes it
    assert _exchange(session, "GET", url)["status"] == 201


def test_a_proxy_from_the_environment_takes_requests_way(server: _Server,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy variable set, a request goes through the proxy, as requests sends it
    (the recorder plays the proxy: it sees the absolute URL in the request line)."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_port}")
    session = http_session({"HTTP_PROXY": f"http://127.0.0.1:{server.server_port}"})
    assert session.trust_env
    assert isinstance(session, LeanSession)
    assert _exchange(session, "GET", "http://receiver.invalid/hook")["status"] == 201
    assert server.seen[-1]["line"] == "GET http://receiver.invalid/hook HTTP/1.1"
    assert not session._pools  # type: ignore[attr-defined]
