"""Peers that misbehave on purpose, on a raw loopback socket: for tests and benchmarks of
callwatch's clients (Slack, webhooks, Insights).

``HostilePeer(answer)`` accepts connections, reads each request's head (and a body
announced by ``Content-Length``), records it, and hands the socket to ``answer``:

- ``huge(total)``: 200 with no length, then ``total`` bytes as fast as the client takes
  them (``peer.sent`` counts what was written before the client hung up);
- ``drip(every_s, prefix)``: 200 announcing a long body, then ``prefix`` and one more
  byte every ``every_s`` seconds, for as long as the client stays (or ``for_s``);
- ``drip_head(every_s, for_s)``: a status line, then headers one byte every ``every_s``
  seconds that never end (for ``for_s``): a client's per-read timeout never fires;
- ``fixed(status, headers, body)``: an ordinary answer (a redirect, say).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self

Answer = Callable[["HostilePeer", socket.socket], None]


class HostilePeer:
    """A threaded raw HTTP/1.1 server on 127.0.0.1; ``.url``, ``.requests``, ``.sent``."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[bytes] = []
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="hostile-peer")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)

    def count(self, n: int) -> None:
        with self._lock:
            self.sent += n

    def stopped(self, wait_s: float = 0.0) -> bool:
        return self._stop.wait(wait_s)

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                head, _, body = head.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(body) < length:
                    data = conn.recv(65536)
                    if not data:
                        break
                    body += data
                with self._lock:
                    self.requests.append(head)
                self._answer(self, conn)
            except OSError:
                return


def huge(total: int, chunk: int = 1024 * 1024) -> Answer:
    def answer(peer: HostilePeer, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        block = b"x" * chunk
        left = total
        while left > 0 and not peer.stopped():
            piece = block[:min(chunk, left)]
            conn.sendall(piece)
            peer.count(len(piece))
            left -= len(piece)
    return answer


def drip(every_s: float, prefix: bytes = b"", announced: int = 10_000_000,
         for_s: float = 3600.0) -> Answer:
    def answer(peer: HostilePeer, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % announced + prefix)
        until = time.monotonic() + for_s
        while not peer.stopped(every_s) and time.monotonic() < until:
            conn.sendall(b" ")
            peer.count(1)
    return answer


def drip_head(every_s: float, for_s: float = 3600.0) -> Answer:
    def answer(peer: HostilePeer, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        until = time.monotonic() + for_s
        while not peer.stopped(every_s) and time.monotonic() < until:
            conn.sendall(b"x")
            peer.count(1)
    return answer


def fixed(status: int, headers: Mapping[str, str], body: bytes = b"") -> Answer:
    def answer(peer: HostilePeer, conn: socket.socket) -> None:
        lines = [f"HTTP/1.1 {status} Scripted", f"Content-Length: {len(body)}",
                 "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return answer
