"""``InsightsCredentials``: which credentials Insights is called with, kept per process.

With an API key, that key is all there is. Without one, the account's auth token
comes first and ``TWILIO_AUTH_TOKEN_SECONDARY`` second: during a token rotation, once
the secondary is promoted in Twilio's console, the primary starts getting 401. The
client then tries the next credential; the one that works is kept for every later
call of the process (no 401 round trip per call), and the switch is logged once
(``insights_auth_fell_back``), naming the variable now in use, never its value.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from service.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Credential:
    """One HTTP Basic pair, and the variable it comes from (what the log may name)."""

    variable: str
    username: str
    password: str = field(repr=False)

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)


class InsightsCredentials:
    """The candidates in order of preference and the one that worked last; thread-safe."""

    def __init__(self, candidates: Sequence[Credential], *,
                 rotation_hint: str = "set the new token as TWILIO_AUTH_TOKEN") -> None:
        if not candidates:
            raise ValueError("at least one credential is needed")
        self._candidates = tuple(candidates)
        self._rotation_hint = rotation_hint
        self._current = 0
        self._lock = threading.Lock()

    @classmethod
    def single(cls, auth: tuple[str, str]) -> InsightsCredentials:
        return cls([Credential("credentials", *auth)])

    @classmethod
    def from_settings(cls, settings: Settings) -> InsightsCredentials:
        """The API key when set; else the auth token, then the secondary token if set."""
        if settings.twilio_api_key_sid and settings.twilio_api_key_secret:
            return cls([Credential("TWILIO_API_KEY_SECRET", settings.twilio_api_key_sid,
                                   settings.twilio_api_key_secret)])
        candidates = [Credential("TWILIO_AUTH_TOKEN", settings.twilio_account_sid,
                                 settings.twilio_auth_token)]
        if settings.twilio_auth_token_secondary:
            candidates.append(Credential("TWILIO_AUTH_TOKEN_SECONDARY",
                                         settings.twilio_account_sid,
                                         settings.twilio_auth_token_secondary))
        return cls(candidates)

    def __repr__(self) -> str:
        return f"InsightsCredentials({[c.variable for c in self._candidates]!r})"

    def in_order(self) -> list[Credential]:
        """Every candidate, the one that worked last first."""
        with self._lock:
            current = self._current
        return [self._candidates[current],
                *(c for n, c in enumerate(self._candidates) if n != current)]

    def worked(self, credential: Credential) -> None:
        """Keep ``credential`` for later calls; log when that changes which one is used."""
        with self._lock:
            index = self._candidates.index(credential)
            if index == self._current:
                return
            previous = self._candidates[self._current]
            self._current = index
        log.warning("insights_auth_fell_back", using=credential.variable,
                    refused=previous.variable,
                    message=f"Insights refused {previous.variable} (401) and accepted "
                            f"{credential.variable}; this process keeps using it. Finish the "
                            f"rotation: {self._rotation_hint}.")
