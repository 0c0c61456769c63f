"""The simulator's memory: credentials, registered calls, the request log, global faults.

One ``SimulatorState`` backs one simulator app. It is shared by the server's
request threads, so every read and write takes its lock. Clocks and ``sleep`` are
injected so tests can drive time.
"""

from __future__ import annotations

import hmac
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devtools.simulator.defaults import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from devtools.simulator.scenarios import CallRecord, ScenarioInput, build_call
from service.calls import ACCOUNT_SID_RE, CALL_SID_RE


@dataclass(frozen=True)
class GlobalFaults:
    """Random failures applied to every Events API request (for drills)."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    seed: int | None = None


class SimulatorState:
    """Everything a running simulator knows; safe to use from many threads."""

    def __init__(
        self,
        account_sid: str = DEV_ACCOUNT_SID,
        auth_token: str = DEV_AUTH_TOKEN,
        api_key: tuple[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        #: More accounts (an ISV's sub-accounts): SID -> auth token.
        self._accounts: dict[str, str] = {}
        self._api_key = api_key
        self.clock = clock
        self.now = now
        self.sleep = sleep
        self._lock = threading.Lock()
        self._calls: dict[str, tuple[CallRecord, float]] = {}
        self._counts: dict[str, int] = {}
        self._log: list[dict[str, Any]] = []
        self._faults = GlobalFaults()
        self._rng = random.Random()  # noqa: S311 (simulated faults, not security)

    def owner(self, username: str | None, kind: str | None) -> str | None:
        """The account whose resources authenticated credentials may read (an API key
        belongs to the main account)."""
        if kind == "api_key":
            return self.account_sid
        return username if kind == "account" else None

    def __repr__(self) -> str:  # never show the credentials
        return f"SimulatorState(account_sid={self.account_sid!r})"

    def add_account(self, account_sid: str, auth_token: str) -> None:
        """Accept ``account_sid`` with ``auth_token`` (replacing its token: a rotation)."""
        if not ACCOUNT_SID_RE.match(account_sid):
            raise ValueError("account_sid must be AC followed by 32 hex digits")
        with self._lock:
            if account_sid == self.account_sid:
                self._auth_token = auth_token
            else:
                self._accounts[account_sid] = auth_token

    def authenticate(self, username: str | None, password: str | None) -> str | None:
        """``"account"`` or ``"api_key"`` for good Basic credentials, else None."""
        if username is None or password is None:
            return None
        with self._lock:
            token = (self._auth_token if username == self.account_sid
                     else self._accounts.get(username))
        if token is not None and hmac.compare_digest(password, token):
            return "account"
        if self._api_key is not None and username == self._api_key[0] and hmac.compare_digest(
                password, self._api_key[1]):
            return "api_key"
        return None

    def add_call(self, scenario: str, call_sid: str | None = None,
                 options: Mapping[str, Any] | None = None) -> CallRecord:
        """Register a call built by ``scenario``; ``ValueError`` for bad input."""
        if call_sid is None:
            call_sid = "CA" + uuid.uuid4().hex
        if not isinstance(call_sid, str) or not CALL_SID_RE.match(call_sid):
            raise ValueError("call_sid must be CA followed by 32 hex digits")
        if options is not None and not isinstance(options, Mapping):
            raise ValueError("options must be a JSON object")
        options = dict(options or {})
        account_sid = options.pop("account_sid", self.account_sid)
        if not isinstance(account_sid, str) or not ACCOUNT_SID_RE.match(account_sid):
            raise ValueError("option account_sid must be AC followed by 32 hex digits")
        record = build_call(scenario, ScenarioInput(call_sid, account_sid, self.now(), options))
        registered = self.clock()
        with self._lock:
            for leg in (record, *record.children):
                self._calls[leg.call_sid] = (leg, registered)
                self._counts.pop(leg.call_sid, None)
        return record

    def children(self, parent_sid: str, account_sid: str) -> list[CallRecord]:
        """The legs ``parent_sid`` created, in ``account_sid``, in the order they were made."""
        with self._lock:
            found = self._calls.get(parent_sid)
        if found is None or found[0].account_sid != account_sid:
            return []
        return list(found[0].children)

    def lookup(self, call_sid: str) -> tuple[CallRecord, float] | None:
        """The call and the monotonic time it was registered, or None."""
        with self._lock:
            return self._calls.get(call_sid)

    def count_request(self, call_sid: str) -> int:
        """Count one Events request for ``call_sid``; returns its 1-based number."""
        with self._lock:
            self._counts[call_sid] = self._counts.get(call_sid, 0) + 1
            return self._counts[call_sid]

    def log_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        """A copy of the Events API request log, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def set_faults(self, rate_429: float = 0.0, rate_500: float = 0.0,
                   seed: int | None = None) -> GlobalFaults:
        for name, rate in (("rate_429", rate_429), ("rate_500", rate_500)):
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ValueError(f"{name} must be a number from 0 to 1")
        if rate_429 + rate_500 > 1:
            raise ValueError("rate_429 + rate_500 must not exceed 1")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be a whole number")
        faults = GlobalFaults(float(rate_429), float(rate_500), seed)
        with self._lock:
            self._faults = faults
            self._rng = random.Random(seed)  # noqa: S311
        return faults

    def draw_fault(self) -> int | None:
        """429, 500 or None for the next request, by the global fault rates."""
        with self._lock:
            faults = self._faults
            if not faults.rate_429 and not faults.rate_500:
                return None
            draw = self._rng.random()
        if draw < faults.rate_429:
            return 429
        if draw < faults.rate_429 + faults.rate_500:
            return 500
        return None

    def reset(self) -> None:
        """Forget every call, the request log and the global faults."""
        with self._lock:
            self._calls.clear()
            self._counts.clear()
            self._log.clear()
            self._faults = GlobalFaults()
            self._rng = random.Random()  # noqa: S311
