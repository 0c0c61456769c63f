"""X-Twilio-Signature checking: which URL Twilio signed, and whether the signature fits.

Twilio signs the exact URL it requested plus the sorted POST parameters. Behind a
proxy the app sees another URL, and Werkzeug's ``request.url`` decodes
percent-escapes, so the URL is rebuilt here:
``PUBLIC_BASE_URL`` + the raw path + the raw query string, or, without it, the
request's own scheme and host (after ``ProxyFix`` when ``TRUSTED_PROXY_HOPS`` > 0).
The check itself is twilio's ``RequestValidator``, tried with each accepted token
(primary, then secondary during a rotation).

With more accounts (``TWILIO_ACCOUNTS``), ``AccountSignatures`` picks the tokens of the
account the callback names (``AccountSid``) and no other: a callback signed with one
account's token for another account's call does not validate, and a callback naming an
account that is not watched has no token to match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from flask import Request
from twilio.request_validator import RequestValidator, add_port, compare, remove_port

from service.calls import ACCOUNT_SID_RE

_LEGACY_ESCAPES = re.compile(r"%3[aA]|%40")


class SignatureChecker:
    """Checks ``X-Twilio-Signature`` against every accepted auth token."""

    def __init__(self, tokens: Sequence[str], public_base_url: str | None = None) -> None:
        if not tokens:
            raise ValueError("at least one auth token is needed")
        self._validators = [RequestValidator(token) for token in tokens]
        self._public_base_url = public_base_url.rstrip("/") if public_base_url else None

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed for this request, byte for byte as Twilio sent it."""
        raw_path = _raw_path(request)
        query = request.query_string.decode("latin-1")
        tail = raw_path + (f"?{query}" if query else "")
        if self._public_base_url:
            return self._public_base_url + tail
        return f"{request.scheme}://{request.host}{tail}"

    def is_valid(self, url: str, params: Any, signature: str | None) -> bool:
        """True when ``signature`` matches ``url`` and ``params`` under any token.

        The same check as ``RequestValidator.validate`` (Twilio signs the URL with or
        without its default port, so both are tried), computed lazily: the usual
        match costs one HMAC instead of two.
        """
        if not signature:
            return False
        return any(compare(v.compute_signature(candidate, params), signature)
                   for candidate in _candidates(url) for v in self._validators)

    def check(self, request: Request, params: Any) -> bool:
        """Verify a status callback: ``params`` are its form fields (POST), or empty (GET)."""
        return self.is_valid(self.signed_url(request), params,
                             request.headers.get("X-Twilio-Signature"))


class AccountSignatures:
    """One ``SignatureChecker`` per watched account, chosen by the callback's ``AccountSid``."""

    def __init__(self, tokens: Mapping[str, Sequence[str]],
                 public_base_url: str | None = None) -> None:
        """``tokens``: each account's tokens, the main account (``TWILIO_ACCOUNT_SID``) first."""
        if not tokens:
            raise ValueError("at least one account is needed")
        self._checkers = {sid: SignatureChecker(found, public_base_url)
                          for sid, found in tokens.items()}
        self._primary = next(iter(self._checkers.values()))

    def check(self, request: Request, params: Any, account_sid: str | None) -> bool:
        """Verify a callback with ``account_sid``'s tokens. A well-formed SID of an account
        not watched has no token and fails like a wrong signature; a missing or malformed
        one is checked with the main account's tokens, so a callback signed by it learns
        which field is wrong (400) rather than a bare 403."""
        if account_sid is None or not ACCOUNT_SID_RE.match(account_sid):
            return self._primary.check(request, params)
        checker = self._checkers.get(account_sid)
        return checker is not None and checker.check(request, params)


def _candidates(url: str) -> Iterator[str]:
    """The URLs Twilio may have signed, likeliest first (generated lazily).

    With and without the port, as ``RequestValidator`` tries; then, when the
    query escapes ``:`` or ``@`` (``From=client%3Aalice`` in a GET callback from a Voice
    SDK call, ``sip%3A…%40…``), the same with those two unescaped: Twilio has signed such
    queries that way, and twilio-node accepts both (twilio-node PR #621).
    Any other escape stays as sent.
    """
    yield from _port_variants(url)
    parsed = urlparse(url)
    legacy = _LEGACY_ESCAPES.sub(lambda m: ":" if m.group(0)[2] in "aA" else "@", parsed.query)
    if legacy != parsed.query:
        parsed = parsed._replace(query=legacy)
        yield remove_port(parsed)
        yield add_port(parsed)


@lru_cache(maxsize=256)
def _port_variants(url: str) -> tuple[str, str]:
    """``url`` with and without a port, as it came first: the one Twilio signed is
    usually the URL as configured, so the usual match costs one HMAC. Cached: behind
    ``PUBLIC_BASE_URL`` every POST callback has the same URL."""
    parsed = urlparse(url)
    if parsed.port:
        return add_port(parsed), remove_port(parsed)
    return remove_port(parsed), add_port(parsed)


def _raw_path(request: Request) -> str:
    """The path as the client sent it, escapes intact (gunicorn RAW_URI, werkzeug REQUEST_URI)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    path = raw.split("?", 1)[0]
    return path if path.startswith("/") else request.script_root + request.path
