"""``HEARTBEAT_URL``: one GET a minute across the deployment while analyses run on time,
none while they are late, never a redirect followed (a real HTTP server on loopback)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
import requests

from devtools.background_server import BackgroundServer
from devtools.hostile_peers import HostilePeer, drip_head
from devtools.processes import settings_env, worker
from devtools.redis_server import RedisServer
from service import heartbeat_ping, keys
from service.heartbeat_ping import ping_if_due
from service.intake import Intake
from workers.heartbeat_pinger import HeartbeatPinger


class CheckService:
    """A dead man's switch stand-in: records each GET's path; ``/moved`` redirects."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._http = BackgroundServer(self._app, name="check-service")

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self._lock:
            self.paths.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        if environ["PATH_INFO"] == "/moved":
            start_response("302 Found", [("Location", f"{self._http.url}/elsewhere")])
            return [b""]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"OK"]

    def url(self, path: str) -> str:
        return f"{self._http.url}{path}"


@pytest.fixture
def check_service() -> Iterator[CheckService]:
    service = CheckService()
    service._http.start()
    yield service
    service._http.stop()


def test_one_ping_a_minute_across_the_deployment(redis: redis_lib.Redis,
                                                 check_service: CheckService) -> None:
    """Three worker processes offering at once send one GET; the next minute's may go."""
    session = requests.Session()
    pingers = [HeartbeatPinger(redis, check_service.url("/ping/abc"), session) for _ in range(3)]
    assert [p.offer() for p in pingers] == [True, None, None]
    assert check_service.paths == ["GET /ping/abc"]
    assert 0 < redis.ttl(keys.HEARTBEAT_PING) <= heartbeat_ping.PING_EVERY_S
    redis.delete(keys.HEARTBEAT_PING)  # the minute's turn has expired
    assert pingers[1].offer() is True
    assert check_service.paths == ["GET /ping/abc"] * 2


def test_no_ping_while_analyses_are_late(redis: redis_lib.Redis,
                                         check_service: CheckService) -> None:
    """A call overdue by more than 5 minutes withholds the ping, so the outside service
    notices workers that run but do not keep up."""
    Intake(redis).admit({"call_sid": "CA" + "3" * 32}, due_at=time.time() - 400)
    pinger = HeartbeatPinger(redis, check_service.url("/ping/abc"), requests.Session())
    assert pinger.offer() is None
    assert check_service.paths == []


def test_a_redirect_is_not_followed(redis: redis_lib.Redis, check_service: CheckService) -> None:
    """A 3xx is not success and its Location gets nothing."""
    assert ping_if_due(redis, requests.Session(), check_service.url("/moved"),
                       overdue_s=lambda: 0.0) is False
    assert check_service.paths == ["GET /moved"]


def test_a_check_service_dripping_its_headers_is_given_up_at_the_deadline(
        redis: redis_lib.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers that never end, a byte at a time within the per-read timeout: the ping
    is given up on (False) while the peer is still dripping, so the pinger goes on."""
    monkeypatch.setattr(heartbeat_ping, "DEADLINE_S", 1.0)
    every_s, for_s = 0.2, 20.0
    with HostilePeer(drip_head(every_s, for_s=for_s)) as peer:
        assert ping_if_due(redis, requests.Session(), peer.url + "/ping/abc",
                           overdue_s=lambda: 0.0) is False
        assert 0 < peer.sent < for_s / every_s / 2


def test_a_worker_with_heartbeat_url_pings_it(redis_server: RedisServer,
                                              check_service: CheckService) -> None:
    """``python -m workers.worker`` with ``HEARTBEAT_URL`` set GETs it within seconds."""
    process = worker(settings_env(redis_server.url, HEARTBEAT_URL=check_service.url("/hc")),
                     "--concurrency", "2").start()
    try:
        process.wait_for(lambda: check_service.paths == ["GET /hc"], timeout=30)
    finally:
        process.stop()
        process.close()
    assert check_service.paths == ["GET /hc"]
