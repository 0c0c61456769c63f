"""HTTP rules every client and setting of callwatch shares.

Sink URLs are secrets (a Slack webhook URL is its own credential; a receiver's URL
may carry a token in its path or query), so only the host ever reaches an error
message or a log line. Plain http is refused except to loopback, where the
simulator, the local stand-ins and ``make run`` live. ``Retry-After`` is read the
same way for Insights, Slack and webhooks.
"""

from __future__ import annotations

import functools
import ipaddress
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata
from urllib.parse import urlsplit

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
