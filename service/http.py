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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

from service.errors import ConfigError
from service.http_deadline import AnswerTooSlow, reading_by, run_by
from service.http_session import LeanSession


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


def headers_by(deadline_s: float, send: Callable[[], requests.Response],
               session: requests.Session | None = None) -> requests.Response:
    """``send()`` (up to the answer's headers) if it returns within ``deadline_s``, else
    ``AnswerTooSlow``.

    ``requests``' timeouts bound each socket read, not the exchange: a peer that drips
    its headers a byte at a time holds ``send()`` as long as it likes. When ``send`` goes
    through ``session``, a ``LeanSession``, the exchange is bounded as
    ``service.http_deadline`` says (its pools' connections read the answer, body included,
    by the deadline; no thread handoff over an open connection); with any other session
    ``send()`` runs in a helper thread and the caller stops waiting at the deadline (a late
    answer is closed when it comes). Every client of a peer that is not ours wraps its
    request in this, then reads the body with ``read_capped`` before the same deadline."""
    if isinstance(session, LeanSession):
        with reading_by(time.monotonic() + deadline_s):
            return send()
    return run_by(deadline_s, send)
