"""A Lua script that concurrent callers run over one connection, their calls sent together.

Group commit, as databases do it for their logs: a caller adds its call to the pending
list and takes the flush lock; whoever holds it sends every pending call in one write
and reads their replies, so callers that arrive while a round trip is under way go out
together in the next one. Each caller still returns only once Redis has answered for
its own call: nothing is acknowledged before it is written. Calls that queue behind a
round trip share the next one (one write, one read, one wake-up instead of one each);
how often that happens depends on the round trip's length and on ``gather``: under
gevent, the caller about to send first lets the event loop run whatever is ready (a
bounded turn, ``service.web.gevent_turn``), so requests already under way reach their call and
share the round trip instead of waiting for the next one. Alone, a call costs one round trip, as before.
It also bounds the connections a process opens for these calls to one, however many
requests it serves at once.

The calls go straight to the connection (``EVALSHA``, then ``SCRIPT LOAD`` and again
for the calls Redis answers NOSCRIPT, after a restart). A round trip that fails on the
connection (reset, timed out: a Redis restarted since the last call) is sent once more
on a fresh connection, as redis-py's own retry would, for the calls not yet answered:
the script must be idempotent, since Redis may have run some of them before the failure
(those callers then see the second run's answer). What still fails is raised to every
caller left unanswered. A caller interrupted while it holds the round trip (its own
deadline, a killed greenlet) takes the interruption alone: the calls it carried for
others that got no answer go back in line for the next caller to send.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from redis import Redis
from redis.commands.core import Script
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
    """Runs a registered script (``Redis.register_script``) for many callers (threads or
    greenlets) over one connection of its client's pool."""

    def __init__(self, script: Script, *, gather: Callable[[], object] | None = None) -> None:
        """``gather``: called by the caller about to send, before it takes the pending calls,
        to let concurrent callers join the round trip (a bounded wait: it holds the round
        trip meanwhile)."""
        client = script.registered_client
        if not isinstance(client, Redis):
            raise TypeError("BatchedScript needs a script registered on a redis.Redis client")
        self._script = script
        self._pool = client.connection_pool
        self._pending: list[_Call] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._connection: AbstractConnection | None = None
        self._gather = gather

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply for these keys and args; raises ``redis.RedisError``."""
        call = _Call(("EVALSHA", self._script.sha, len(keys), *keys, *args))
        with self._pending_lock:
            self._pending.append(call)
        with self._flush_lock:
            if not call.done:  # else a round trip that held the lock carried it
                if self._gather is not None:
                    self._gather_others(call, self._gather)
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    self._flush(batch)
                except BaseException:
                    # This caller was interrupted (its own deadline, a killed greenlet):
                    # the interruption is its alone. The others' unanswered calls go back
                    # for the next round trip (the script is idempotent).
                    self._put_back([other for other in batch if other is not call])
                    raise
        if call.error is not None:
            raise call.error
        return call.result

    def _gather_others(self, call: _Call, gather: Callable[[], object]) -> None:
        """Let concurrent callers add their calls; a caller interrupted meanwhile takes its
        own call back (it was never sent: nothing of it is written)."""
        try:
            gather()
        except BaseException:
            with self._pending_lock:
                if call in self._pending:
                    self._pending.remove(call)
            raise

    def _flush(self, batch: list[_Call]) -> None:
        """Send ``batch`` and give each call its reply or the Redis error; all are done after.
        Anything else (an interruption) is raised with the calls left as they are."""
        try:
            for attempt in range(RESENDS + 1):
                unanswered = [call for call in batch if call.result is _NO_REPLY]
                try:
                    self._round_trip(unanswered)
                    break
                except (RedisConnectionError, RedisTimeoutError):
                    if attempt == RESENDS:
                        raise
            missing = [call for call in batch if isinstance(call.result, NoScriptError)]
            if missing:
                self._load_script()
                for call in missing:
                    call.result = _NO_REPLY
                self._round_trip(missing)
        except RedisError as error:
            for call in batch:
                if call.result is _NO_REPLY:
                    call.result = error  # calls Redis did answer keep their reply
        for call in batch:
            if isinstance(call.result, RedisError):
                call.error, call.result = call.result, None
            call.done = True

    def _put_back(self, calls: list[_Call]) -> None:
        """Calls of an interrupted round trip: those answered are done, the rest go first
        in line again."""
        again = []
        for call in calls:
            if call.result is _NO_REPLY or isinstance(call.result, NoScriptError):
                call.result = _NO_REPLY
                again.append(call)
            else:
                if isinstance(call.result, RedisError):
                    call.error, call.result = call.result, None
                call.done = True
        with self._pending_lock:
            self._pending[:0] = again

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
        connection.send_command("SCRIPT", "LOAD", self._script.script)
        connection.read_response()

    def _connected(self) -> AbstractConnection:
        """The connection, taken from the client's pool on first use and kept; redis-py
        reconnects it after a failure, and pings it first when it has been idle long."""
        if self._connection is None:
            self._connection = self._pool.get_connection()
        return self._connection
