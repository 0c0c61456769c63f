"""A deadline on a whole HTTP exchange, not only on each socket operation.

requests' timeouts bound each read and each connect, not the exchange: a peer that drips
its answer a byte at a time holds a request as long as it likes. Two ways end it at a
deadline with ``AnswerTooSlow``:

* In place (``reading_by``), for the requests ``service.http_session.LeanSession`` sends
  through its pools: their connections (:class:`BoundedHTTPConnection`,
  :class:`BoundedHTTPSConnection`) read each answer through a file that cuts every socket
  read to the time left and raises at the deadline, so headers and body alike end by it;
  each send of the request gets the time left as its timeout. A new connection is one
  wait of at most the time left when it goes to an IP address over plain http (the
  simulator and stand-ins on loopback); otherwise its name lookup, TCP connect and TLS
  handshake are waits bounded one by one, so it is made in a helper thread that the
  caller stops waiting for at the deadline. An exchange over an open connection (the
  common case with a kept-alive peer) costs no thread handoff.
* In a helper thread (``run_by``), for anything else: the exchange runs there, left to
  its own timeouts, and the caller stops waiting at the deadline; what comes late (an
  answer, a connection) is closed when it comes.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ipaddress
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from urllib3.connection import HTTPConnection, HTTPSConnection

T = TypeVar("T")


class AnswerTooSlow(Exception):
    """A peer's answer was still arriving at the reader's deadline."""


_local = threading.local()


def current_deadline() -> float | None:
    """The ``time.monotonic()`` instant this thread's exchange must end by, if any."""
    deadline: float | None = getattr(_local, "deadline", None)
    return deadline


@contextmanager
def reading_by(deadline: float) -> Iterator[None]:
    """Within the block, exchanges on this thread through the bounded connections end by
    ``deadline`` (a ``time.monotonic()`` instant)."""
    outer = current_deadline()
    _local.deadline = deadline if outer is None else min(outer, deadline)
    try:
        yield
    finally:
        _local.deadline = outer


def time_left(deadline: float) -> float:
    """Seconds to ``deadline``; ``AnswerTooSlow`` when none are left."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise AnswerTooSlow("no answer before the deadline")
    return left


#: ``_cut_timeout``'s answer when the socket's own timeout already ends by the deadline.
_UNCUT = object()


def _cut_timeout(sock: Any, deadline: float) -> Any:
    """Cut ``sock``'s timeout to the time left (``AnswerTooSlow`` when none is); return the
    timeout it had, or ``_UNCUT`` when that already ended by the deadline."""
    left = time_left(deadline)
    timeout = sock.gettimeout()
    if timeout is not None and timeout <= left:
        return _UNCUT
    sock.settimeout(left)
    return timeout


class _ReadsBy(io.RawIOBase):
    """A socket's reader (``socket.SocketIO``) whose every read ends by the deadline."""

    def __init__(self, raw: Any, sock: Any, deadline: float) -> None:
        super().__init__()
        self._raw, self._sock, self._deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self._raw.fileno())

    def readinto(self, buffer: Any) -> int | None:
        timeout = _cut_timeout(self._sock, self._deadline)
        if timeout is _UNCUT:
            return self._raw.readinto(buffer)  # type: ignore[no-any-return]
        try:
            return self._raw.readinto(buffer)  # type: ignore[no-any-return]
        except TimeoutError:
            raise AnswerTooSlow("the answer was still arriving at the deadline") from None
        finally:
            with contextlib.suppress(OSError):  # closed meanwhile
                self._sock.settimeout(timeout)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _BoundedResponse(http.client.HTTPResponse):
    """http.client's response, read through :class:`_ReadsBy` within ``reading_by``."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        deadline = current_deadline()
        if deadline is not None:
            self.fp = io.BufferedReader(_ReadsBy(self.fp.detach(), sock, deadline))


class _Bounded:
    """What the bounded connections add to urllib3's (see the module docstring)."""

    response_class: type[http.client.HTTPResponse] = _BoundedResponse
    #: A TLS connection is three waits bounded one by one: made in a helper thread.
    _tls = False
    host: str
    sock: Any

    def connect(self) -> None:
        deadline = current_deadline()
        if deadline is None or (not self._tls and _is_ip_address(self.host)):
            super().connect()  # type: ignore[misc]  # one wait, of at most the time left
            return
        connect = super().connect  # type: ignore[misc]

        def made() -> _Bounded:
            connect()
            return self

        run_by(time_left(deadline), made)  # a connection made too late is closed

    def send(self, data: Any) -> None:
        deadline = current_deadline()
        if deadline is not None and self.sock is not None:
            _cut_timeout(self.sock, deadline)  # urllib3 sets it again before the answer
        super().send(data)  # type: ignore[misc]


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class BoundedHTTPConnection(_Bounded, HTTPConnection):
    """urllib3's HTTP connection, bounded within ``reading_by``."""


class BoundedHTTPSConnection(_Bounded, HTTPSConnection):
    """urllib3's HTTPS connection, bounded within ``reading_by``."""

    _tls = True


def run_by(deadline_s: float, task: Callable[[], T]) -> T:
    """``task()`` in a helper thread if it returns within ``deadline_s``, else
    ``AnswerTooSlow``; what the task returns after the caller stopped waiting (an answer,
    a connection) is closed."""
    done = threading.Event()
    lock = threading.Lock()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = task()
        except BaseException as error:  # handed to the waiting caller
            box["error"] = error
        with lock:
            if box.get("abandoned") and "result" in box:
                getattr(box["result"], "close", lambda: None)()
            done.set()

    _helpers().run(run)
    if not done.wait(deadline_s):
        with lock:
            if not done.is_set():
                box["abandoned"] = True
                raise AnswerTooSlow("no answer before the deadline")
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


class _Helpers:
    """Daemon threads for ``run_by``, kept ``IDLE_S`` for the next exchange: a thread
    started per request cost a tenth of a worker's CPU per alerting call (``bench/e2e.py``).
    A new one starts whenever none is idle, so a peer hanging past its deadline (holding
    its thread until its own timeouts end) never makes another request wait; daemon, so
    such a thread never holds up a process's exit."""

    IDLE_S = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0

    def run(self, task: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._tasks.put(task)
                return
        threading.Thread(target=self._serve, args=(task,), daemon=True,
                         name="http-deadline").start()

    def _serve(self, task: Callable[[], None]) -> None:
        while True:
            task()
            with self._lock:
                self._idle += 1
            try:
                task = self._tasks.get(timeout=self.IDLE_S)
            except queue.Empty:
                with self._lock:
                    try:  # handed a task as the wait ended: it is this thread's
                        task = self._tasks.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return


_helpers_by_pid: dict[int, _Helpers] = {}


def _helpers() -> _Helpers:
    """This process's helper threads (a forked child starts its own: threads do not fork)."""
    pid = os.getpid()
    helpers = _helpers_by_pid.get(pid)
    if helpers is None:
        helpers = _helpers_by_pid.setdefault(pid, _Helpers())
    return helpers
