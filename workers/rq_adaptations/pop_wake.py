"""Ending a worker's wait for its next job early: on a stop, and for a scheduler lock to take.

What this changes in RQ, and why: a waiting worker blocks in ``BLPOP`` on its queues
(``workers.rq_adaptations.dequeue``). It waited in slices of a second so that a stop was
seen within one, which cost every idle worker process a round trip and a pass through
its loop each second: a third of the idle workers' CPU in ``bench/e2e.py``, and at 5
alerting calls a second a tenth of the CPU per call. Now the pop waits ``POP_WAIT_S``
(RQ's own pop waits 20 s), and what must not wait that long wakes it: a stop (SIGTERM,
SIGINT, RQ's ``shutdown`` command) and a scheduler lock the beat freed for this worker
(``workers.rq_adaptations.scheduler_locks``).

The wake is Redis's ``CLIENT UNBLOCK <id> TIMEOUT``, sent from another connection: the
pop returns as if its time had run out, so no job is lost (Redis either handed one over
before, and the worker gets it, or the pop ends empty). The worker process's
connections carry a name of their own (:class:`ConnectionNamer`, set at connect), by
which the waker finds the blocked one (``CLIENT LIST``). The name is a best effort: a
server that refuses ``CLIENT SETNAME`` (a proxy, an ACL without it) still serves the
connection, and the pop then ends by its timeout. A signal handler only sets an
event (it may run while the main thread holds the connection pool's lock): a thread of
the waker's sends the commands. A Redis that refuses ``CLIENT LIST`` or ``CLIENT
UNBLOCK`` (an ACL without ``@admin``) is logged once (``pop_wake_unavailable``); the pop
then ends by its timeout, so a stop takes up to ``POP_WAIT_S`` longer, well within the
25 s a stop may take.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import Any

import redis as redis_lib
import structlog

#: The longest an idle worker's pop waits for a job before its loop runs again (the
#: registration renewal and RQ's maintenance run between pops, every 5 s).
POP_WAIT_S = 5
#: How long a wake keeps looking for the pop it must end (the main thread may be about to
#: send it), and how often.
WAKE_TRY_S = 1.0
WAKE_LOOK_EVERY_S = 0.01

log = structlog.get_logger(__name__)


def connection_name() -> str:
    """A name for one worker process's Redis connections (``CLIENT SETNAME``), unique in
    the deployment: the waker finds its process's blocked pop by it."""
    return f"callwatch-worker-{os.getpid()}-{secrets.token_hex(4)}"


class ConnectionNamer:
    """redis-py's connection set-up (``redis_connect_func``), then ``CLIENT SETNAME``; a
    refusal is logged once and leaves the connection unnamed (redis-py's own
    ``client_name`` would fail the connection, and every command with it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.refused = False

    def __call__(self, connection: Any) -> None:
        connection.on_connect()
        if self.refused:
            return
        try:
            connection.send_command("CLIENT", "SETNAME", self.name)
            connection.read_response()
        except redis_lib.ResponseError as error:
            self.refused = True
            log.warning("connection_name_refused", error=str(error), pop_wait_s=POP_WAIT_S)


def named_connections() -> dict[str, Any]:
    """The Redis client options that name a worker process's connections."""
    return {"redis_connect_func": ConnectionNamer(connection_name())}


def namer_of(redis: redis_lib.Redis) -> ConnectionNamer | None:
    """What names this client's connections (None: they are not named here)."""
    namer = redis.connection_pool.connection_kwargs.get("redis_connect_func")
    return namer if isinstance(namer, ConnectionNamer) else None


def name_in_use(redis: redis_lib.Redis) -> str | None:
    """The name this client's connections carry in Redis (None: none, or Redis refused it)."""
    namer = namer_of(redis)
    return namer.name if namer is not None and not namer.refused else None


class PopWaker:
    """A daemon thread that ends this process's blocking pop when ``wake()`` is called.

    The waiting loop sets ``popping`` before it looks one last time at what would wake it
    and pops, and clears it after: a wake either finds the flag clear (the loop will see
    the reason before its next pop) or keeps looking until the pop is blocked in Redis.
    """

    def __init__(self, redis: redis_lib.Redis) -> None:
        self._redis = redis
        self._namer = namer_of(redis)
        self._event = threading.Event()
        self._closed = False
        self._refused = False
        self.popping = False
        self._thread = threading.Thread(target=self._run, name="callwatch-pop-waker",
                                        daemon=True)

    def start(self) -> PopWaker:
        self._thread.start()
        return self

    def wake(self) -> None:
        """End the pop in progress, if any. Safe from a signal handler: sets an event."""
        self._event.set()

    def stop(self) -> None:
        self._closed = True
        self._event.set()

    def _run(self) -> None:
        while True:
            self._event.wait()
            self._event.clear()
            if self._closed:
                return
            try:
                self._unblock()
            except redis_lib.ResponseError as error:  # NOPERM, or a server without the command
                self._refused = True
                log.warning("pop_wake_unavailable", error=str(error), pop_wait_s=POP_WAIT_S)
            except redis_lib.RedisError as error:
                log.warning("pop_wake_failed", error=type(error).__name__)
            except Exception:  # never the end of the waker: each later stop would wait
                log.exception("pop_wake_failed")

    def _unblock(self) -> None:
        namer = self._namer
        if namer is None or namer.refused:  # unnamed connections cannot be found
            return
        deadline = time.monotonic() + WAKE_TRY_S
        while self.popping and not self._refused and not self._closed:
            for client in self._redis.client_list(_type="normal"):
                if client.get("name") == namer.name and "b" in client.get("flags", ""):
                    self._redis.client_unblock(int(client["id"]), error=False)
                    return
            if time.monotonic() >= deadline:
                return
            time.sleep(WAKE_LOOK_EVERY_S)
