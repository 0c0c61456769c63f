"""The worker side of ``HEARTBEAT_URL`` (``service.heartbeat_ping``): a daemon thread per
worker process that offers a ping every ``CHECK_EVERY_S``; one process a minute, across
the deployment, sends it, and only while analyses run on time (read through RQ's queue,
which is why this lives at the edge)."""

from __future__ import annotations

import threading
import time

import redis as redis_lib
import requests
import structlog

from service.heartbeat_ping import ping_if_due
from service.metrics import analysis_overdue_s
from workers.queue_depths import RQQueueDepths

#: How often each worker process offers to ping (the ping itself is once a minute).
CHECK_EVERY_S = 10.0

log = structlog.get_logger(__name__)


class HeartbeatPinger:
    """Pings ``url`` while analyses run on time, until ``stop()``."""

    def __init__(self, redis: redis_lib.Redis, url: str, session: requests.Session) -> None:
        self._redis, self._url, self._session = redis, url, session
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-heartbeat-url",
                                        daemon=True)

    def start(self) -> HeartbeatPinger:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def offer(self) -> bool | None:
        """One offer: ping if it is this process's turn and analyses are on time."""
        def overdue_s() -> float:
            return analysis_overdue_s(self._redis, RQQueueDepths(), now=time.time())
        return ping_if_due(self._redis, self._session, self._url, overdue_s=overdue_s)

    def _run(self) -> None:
        while not self._stopped.wait(CHECK_EVERY_S):
            try:
                self.offer()
            except redis_lib.RedisError as error:  # no Redis: no ping, which is the point
                log.warning("heartbeat_unavailable", error=type(error).__name__)
