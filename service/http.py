"""HTTP rules every client and setting of callwatch shares.

Sink URLs are secrets (a Slack webhook URL is its own credential; a receiver's URL
may carry a token in its path or query), so only the host ever reaches an error
message or a log line. Plain http is refused except to loopback, where the
simulator, the local stand-ins and ``make run`` live. ``Retry-After`` is read the
same way for Insights, Slack and webhooks. Every answer's body is read through
``read_capped``: never more than a cap, never past a deadline, whatever the peer sends.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

from service.errors import ConfigError


@functools.cache
def user_agent() -> str:
    """``callwatch/<version>``, so receivers can tell who is calling."""
    try:
        version = metadata.version("callwatch")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"callwatch/{version}"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (plain http is allowed only there)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(url: str) -> str:
    """The URL's host (and port): all of a sink URL that may be logged."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def require_secure_url(url: str, variable: str) -> str:
    """Return ``url`` if it is HTTPS, or plain HTTP to loopback; else ``ConfigError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(variable, "must be an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(variable, f"must use https (plain http only to loopback), "
                                    f"not http://{parts.hostname}/…")
    return url


#: The longest wait a ``Retry-After`` may ask for. One answer pauses a whole sink (Slack's
#: shared pace), so a year-long or absurd value must not stall every alert behind it.
MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date.

    ``None`` when absent or unreadable, so the caller falls back to its own
    schedule; a date in the past means "now" (0.0); longer than an hour is an hour.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
            if when.tzinfo is None:  # "-0000": an HTTP-date is always GMT
                when = when.replace(tzinfo=UTC)
            seconds = (when - now).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


class AnswerTooLarge(Exception):
    """A peer's answer is longer than the cap its reader set (nothing past the cap was read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is over {limit} bytes")
        self.limit = limit


class AnswerTooSlow(Exception):
    """A peer's answer was still arriving at the reader's deadline."""


#: Bytes asked of the socket per read: small enough that a dripping peer is noticed.
_READ_SIZE = 64 * 1024


def read_capped(response: requests.Response, limit: int, *, deadline: float | None = None,
                monotonic: Callable[[], float] = time.monotonic) -> bytes:
    """The body of a ``stream=True`` response: at most ``limit`` bytes (decompressed), read
    before ``deadline`` (a ``monotonic()`` instant).

    Each read returns as soon as the socket has something (``read1``), so a peer that
    drips a byte at a time is caught by the deadline, not only by the per-read timeout.
    Raises ``AnswerTooLarge`` (a ``Content-Length`` over the cap is refused before any
    read), ``AnswerTooSlow``, or the ``requests`` exception for a broken transfer
    (``ReadTimeout``, ``ConnectionError``, ``ContentDecodingError``).
    """
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise AnswerTooLarge(limit)
    body = bytearray()
    raw = response.raw
    try:
        while True:
            if deadline is not None and monotonic() >= deadline:
                raise AnswerTooSlow(f"the answer was still arriving after {len(body)} bytes")
            chunk = raw.read1(min(_READ_SIZE, limit + 1 - len(body)), decode_content=True)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > limit:
                raise AnswerTooLarge(limit)
    except ReadTimeoutError as exc:
        raise requests.ReadTimeout(exc) from exc
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except (ProtocolError, SSLError, OSError) as exc:
        raise requests.ConnectionError(exc) from exc


def headers_by(deadline_s: float, send: Callable[[], requests.Response]) -> requests.Response:
    """``send()`` (up to the answer's headers) if it returns within ``deadline_s``, else
    ``AnswerTooSlow``; a late answer is closed when it comes.

    ``requests``' timeouts bound each socket read, not the exchange: a peer that drips
    its headers a byte at a time holds ``send()`` as long as it likes. So ``send()`` runs
    in a helper thread, left to its own timeouts, and the caller stops waiting at the
    deadline. Every client of a peer that is not ours wraps its request in this, then
    reads the body with ``read_capped`` before the same deadline."""
    done = threading.Event()
    lock = threading.Lock()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["response"] = send()
        except BaseException as error:  # handed to the waiting caller
            box["error"] = error
        with lock:
            if box.get("abandoned") and "response" in box:
                box["response"].close()
            done.set()

    _helpers().run(run)
    if not done.wait(deadline_s):
        with lock:
            if not done.is_set():
                box["abandoned"] = True
                raise AnswerTooSlow("no answer's headers before the deadline")
    if "error" in box:
        raise box["error"]
    return box["response"]


class _Helpers:
    """Daemon threads for ``headers_by``, kept ``IDLE_S`` for the next exchange: a thread
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
                         name="http-headers").start()

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
