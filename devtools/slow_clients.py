"""Slow and idle HTTP clients against a server on loopback: the slowloris shapes.

``SlowClients(port, idle=200, trickle=16)`` opens ``idle`` connections that send
nothing and ``trickle`` connections that send a request head one header line every
``trickle_every_s`` seconds and never finish it. A connection the server closes
is opened again at once, as an attacker would, so the pressure lasts as long as the
context is open. Used by the tests and by ``bench/slow_clients.py``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

#: The head a trickling client starts (and never ends).
_REQUEST_LINE = b"POST /twilio/status-callback HTTP/1.1\r\nHost: 127.0.0.1\r\n"


class SlowClients:
    """Holds ``idle`` silent and ``trickle`` dripping connections open until ``close()``."""

    def __init__(self, port: int, *, idle: int = 200, trickle: int = 16,
                 trickle_every_s: float = 1.0, host: str = "127.0.0.1") -> None:
        self._address = (host, port)
        self._idle_count = idle
        self._trickle_count = trickle
        self._every_s = trickle_every_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        #: Connections opened so far (reopenings included) and closed by the server.
        self.opened = 0
        self.closed_by_server = 0

    def start(self) -> Self:
        for n in range(self._idle_count):
            self._spawn(self._idle, f"idle-{n}")
        for n in range(self._trickle_count):
            self._spawn(self._trickle, f"trickle-{n}")
        return self

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"slow-client-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(self._address, timeout=5)
        except OSError:
            return None
        with self._lock:
            self._sockets.add(sock)
            self.opened += 1
        return sock

    def _forget(self, sock: socket.socket, *, by_server: bool) -> None:
        with self._lock:
            self._sockets.discard(sock)
            if by_server and not self._stop.is_set():
                self.closed_by_server += 1
        sock.close()

    def _idle(self) -> None:
        """Connect, send nothing, and reconnect when the server hangs up."""
        while not self._stop.is_set():
            sock = self._connect()
            if sock is None:
                self._stop.wait(0.2)
                continue
            sock.settimeout(0.5)
            while not self._stop.is_set():
                try:
                    if sock.recv(1) == b"":
                        break  # the server closed it
                except TimeoutError:
                    continue
                except OSError:
                    break
            self._forget(sock, by_server=True)

    def _trickle(self) -> None:
        """Start a request and add one header line per period, forever."""
        while not self._stop.is_set():
            sock = self._connect()
            if sock is None:
                self._stop.wait(0.2)
                continue
            try:
                sock.sendall(_REQUEST_LINE)
                n = 0
                while not self._stop.wait(self._every_s):
                    n += 1
                    sock.sendall(f"X-Drip-{n}: {'a' * 20}\r\n".encode())
            except OSError:
                pass
            self._forget(sock, by_server=True)
