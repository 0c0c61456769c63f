"""A Lua script that concurrent callers run over one connection, their calls sent together.

Group commit, as databases do it for their logs: a caller adds its call to the pending
list and takes the flush lock; whoever holds it sends every pending call in one write
and reads their replies, so callers that arrive while a round trip is under way go out
together in the next one. Each caller still returns only once Redis has answered for
its own call: nothing is acknowledged before it is written. Under load a round trip
carries several calls (one write, one read, one wake-up instead of one each); alone, a
call costs one round trip, as before. It also bounds the connections a process opens
for these calls to one, however many requests it serves at once.

The calls go straight to the connection (``EVALSHA``, then ``SCRIPT LOAD`` and again
for the calls Redis answers NOSCRIPT, after a restart). A round trip that fails on the
connection (reset, timed out: a Redis restarted since the last call) is sent once more
on a fresh connection, as redis-py's own retry would: the script must be idempotent,
since Redis may have run some calls before the failure (the callers then see the
second run's answer). What still fails is raised to every caller in the round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from hashlib import sha1
from typing import Any

from redis import Redis
from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Round trips sent again on a fresh connection after a connection error.
RESENDS = 1
#: A call's result before Redis has answered it.
_NO_REPLY: Any = object()


class _Call:
    __slots__ = ("command", "done", "error", "result")

    def __init__(self, command: tuple[Any, ...]) -> None:
        self.command = command
        self.done = False
        self.result: Any = _NO_REPLY
        self.error: BaseException | None = None


class BatchedScript:
    """Runs ``script`` for many callers (threads or greenlets) over one connection."""

    def __init__(self, redis: Redis, script: str) -> None:
        self._redis = redis
        self._script = script
        self._sha = sha1(script.encode(), usedforsecurity=False).hexdigest()
        self._pending: list[_Call] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._connection: AbstractConnection | None = None

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply for these keys and args; raises ``redis.RedisError``."""
        call = _Call(("EVALSHA", self._sha, len(keys), *keys, *args))
        with self._pending_lock:
            self._pending.append(call)
        with self._flush_lock:
            if not call.done:  # else a round trip that held the lock carried it
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._flush(batch)
        if call.error is not None:
            raise call.error
        return call.result

    def _flush(self, batch: list[_Call]) -> None:
        """Send ``batch`` and give each call its reply or error; every call is done after."""
        try:
            for attempt in range(RESENDS + 1):
                try:
                    self._round_trip(batch)
                    break
                except (RedisConnectionError, RedisTimeoutError):
                    if attempt == RESENDS:
                        raise
            missing = [call for call in batch if isinstance(call.result, NoScriptError)]
            if missing:
                self._load_script()
                self._round_trip(missing)
            for call in batch:
                if isinstance(call.result, ResponseError):
                    call.error, call.result = call.result, None
        except BaseException as error:  # a bug here, too, must not leave a caller unanswered
            for call in batch:
                if call.result is _NO_REPLY or isinstance(call.result, ResponseError):
                    call.error = error  # calls Redis did answer keep their reply
            if not isinstance(error, RedisError):
                raise
        finally:
            for call in batch:
                call.done = True

    def _round_trip(self, calls: list[_Call]) -> None:
        connection = self._connected()
        connection.send_packed_command(connection.pack_commands([c.command for c in calls]))
        for call in calls:
            try:
                call.result = connection.read_response()
            except ResponseError as error:  # this call's error reply; the connection is fine
                call.result = error

    def _load_script(self) -> None:
        connection = self._connected()
        connection.send_command("SCRIPT", "LOAD", self._script)
        connection.read_response()

    def _connected(self) -> AbstractConnection:
        """The connection, taken from the client's pool on first use and kept; redis-py
        reconnects it after a failure, and pings it first when it has been idle long."""
        if self._connection is None:
            self._connection = self._redis.connection_pool.get_connection()
        return self._connection
