"""``InsightsClient``: every Voice Insights event of one call, over HTTP.

One ``requests.Session``, explicit (connect, read) timeouts and a bounded number of
in-process retries. Waits that would hold a worker for long are not slept through:
they become ``InsightsUnavailable(retry_after=...)`` so the job is rescheduled
instead. Failures are converted to callwatch's own errors (``service.errors``),
raised ``from`` the requests exception that caused them.

One deadline covers a whole fetch (every edge, page, retry and wait): it is checked
while each answer streams in, and no connect or read timeout is longer than what is
left of it, so a page that drips a byte at a time (its body or its headers: the GET
runs under ``service.http.headers_by``) ends the fetch at the deadline
(``InsightsUnavailable``, rescheduled), not at RQ's job timeout. Each page is read
with a cap (``PAGE_CAP``, far above a 1,000-event page); a longer page is a permanent
``page_too_large``: asking again would bring the same page.

Credentials come from ``InsightsCredentials``: on a 401 the next candidate (the
secondary auth token during a rotation) is tried at once, and the one that worked is
kept for the process.

Credentials only ever go to ``base_url``'s scheme, host and port: a
``next_page_url`` pointing anywhere else is refused, and redirects are not followed.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import structlog

from service.calls import CALL_SID_RE
from service.errors import (
    EventsNotReady,
    InsightsBadResponse,
    InsightsUnavailable,
    InvalidInput,
)
from service.http import AnswerTooLarge, AnswerTooSlow, headers_by, parse_retry_after, read_capped
from service.http_session import http_session
from service.insights.credentials import Credential, InsightsCredentials
from service.insights.events import Event, parse_events
from service.insights.response_bodies import (
    ADVANCED_FEATURES_CODES,
    describe,
    error_body,
    http_error,
    json_object,
    permanent_error,
)

log = structlog.get_logger(__name__)

PAGE_SIZE = 1000
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Longest one fetch of a call's pages may take before it is handed back as "unavailable"
#: (rescheduled on the analysis retry schedule), well inside the 180 s job timeout, which
#: would otherwise end the job as a crash.
FETCH_BUDGET_S = 120.0
#: Longest page read. A page of 1,000 events is well under 1 MiB; a page past this is
#: not Insights speaking (a proxy, a loop), and reading it whole could exhaust the worker.
PAGE_CAP = 8 * 1024 * 1024
#: Longest error body read (for Twilio's code and message).
ERROR_CAP = 64 * 1024
#: Failures of the transport, not answers from Insights: retried like a 5xx. A body cut
#: short or badly compressed is one of these too.
_TRANSPORT_ERRORS = (requests.Timeout, requests.ConnectionError,
                     requests.exceptions.ChunkedEncodingError,
                     requests.exceptions.ContentDecodingError)


class InsightsClient:
    """Reads ``GET /v1/Voice/{CallSid}/Events`` for each requested edge, every page."""

    def __init__(
        self,
        base_url: str,
        auth: tuple[str, str] | InsightsCredentials,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        max_inline_wait_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[int | None, float], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        fetch_budget_s: float = FETCH_BUDGET_S,
        monotonic: Callable[[], float] = time.monotonic,
        page_cap: int = PAGE_CAP,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(self.base_url)
        self._credentials = (auth if isinstance(auth, InsightsCredentials)
                             else InsightsCredentials.single(auth))
        self._session = session or http_session(os.environ)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_inline_wait_s = max_inline_wait_s
        self._sleep = sleep
        self._on_request = on_request
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        self._fetch_budget_s = fetch_budget_s
        self._monotonic = monotonic
        self._page_cap = page_cap

    def __repr__(self) -> str:  # never show the credentials
        return f"InsightsClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def fetch_events(self, call_sid: str, edges: Sequence[str]) -> list[Event]:
        """Every event of ``call_sid`` on each edge, edges in the order given.

        Raises ``InvalidInput`` for a malformed CallSid (before any request),
        ``EventsNotReady`` on 404, ``InsightsUnavailable`` when Insights stays busy
        or unreachable, and a ``PermanentError`` subclass for everything retrying
        cannot fix.
        """
        if not CALL_SID_RE.match(call_sid):
            raise InvalidInput("CallSid must be CA followed by 32 hex digits")
        events: list[Event] = []
        give_up_at = self.deadline()
        for edge in edges:
            events.extend(self._fetch_edge(call_sid, edge, give_up_at))
        return events

    # The reading machinery, shared by the Calls and Summary clients (``calls_api``,
    # ``summary``): one deadline, capped pages, retries, credentials, same-origin pages.

    def deadline(self) -> float:
        """When a fetch started now must give up (``FETCH_BUDGET_S`` from now)."""
        return self._monotonic() + self._fetch_budget_s

    def get_json(self, url: str, params: dict[str, Any] | None, *, call_sid: str,
                 give_up_at: float) -> dict[str, Any]:
        """One JSON page of ``url`` (on ``base_url``'s origin), with this client's retries."""
        self._check_budget(give_up_at, call_sid)
        return self._get_json(url, params, call_sid=call_sid, give_up_at=give_up_at)

    def _fetch_edge(self, call_sid: str, edge: str, give_up_at: float) -> list[Event]:
        url: str | None = f"{self.base_url}/v1/Voice/{call_sid}/Events"
        params: dict[str, Any] | None = {"Edge": edge, "PageSize": PAGE_SIZE}
        seen: set[str] = set()
        events: list[Event] = []
        while url is not None:
            try:
                payload = self.get_json(url, params, call_sid=call_sid, give_up_at=give_up_at)
            except EventsNotReady as error:
                if params is not None:  # the edge's first page: nothing there yet
                    raise
                # A later page vanished (an expired page token): fetch the call again later
                # rather than read it as "no events" and drop the pages already read.
                raise InsightsUnavailable(f"Insights lost a later page of {call_sid} ({error})",
                                          status=404) from error
            meta = payload.get("meta")
            meta = meta if isinstance(meta, dict) else {}
            key = meta.get("key")
            key = key if isinstance(key, str) and key else "events"
            records = payload.get(key)
            if not isinstance(records, list):
                raise InsightsBadResponse(
                    f"Insights page for {call_sid} has no {key!r} list", reason="invalid_payload"
                )
            events.extend(parse_events(records))
            url = self.next_url(meta.get("next_page_url"), seen)
            params = None  # the next page URL carries every parameter
        return events

    def next_url(self, value: Any, seen: set[str]) -> str | None:
        """A page's next-page link made absolute; refused off ``base_url``'s origin or
        when it repeats a page."""
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InsightsBadResponse("meta.next_page_url is not a string",
                                      reason="invalid_payload")
        url = urljoin(self.base_url + "/", value)
        if _origin(url) != self._origin:
            host = urlsplit(url).hostname
            raise InsightsBadResponse(
                f"Insights pointed the next page at another origin ({host}); not following it "
                "so the credentials stay with TWILIO_INSIGHTS_BASE_URL",
                reason="offsite_page",
            )
        if url in seen:
            raise InsightsBadResponse("Insights returned the same page twice", reason="page_loop")
        seen.add(url)
        return url

    def _check_budget(self, give_up_at: float, call_sid: str, *, cause: Exception | None = None,
                      wait_s: float = 0.0) -> None:
        """``InsightsUnavailable`` once the fetch's deadline has passed (or would, after ``wait_s``)."""
        if self._monotonic() + wait_s >= give_up_at:
            raise self._over_budget(call_sid) from cause

    def _over_budget(self, call_sid: str) -> InsightsUnavailable:
        """The retryable error of a fetch that ran out of its budget."""
        return InsightsUnavailable(
            f"Insights took over {self._fetch_budget_s:g} s to page through {call_sid}; "
            "the analysis will try again later")

    def _timeouts(self, give_up_at: float) -> tuple[float, float]:
        """The (connect, read) timeouts, none longer than what is left of the fetch."""
        left = max(0.001, give_up_at - self._monotonic())
        return min(self._timeout[0], left), min(self._timeout[1], left)

    def _exchange(self, url: str, params: dict[str, Any] | None,
                  give_up_at: float) -> tuple[requests.Response, bytes]:
        """One GET and its capped body, trying the next credential on a 401."""
        credentials = self._credentials.in_order()
        for n, credential in enumerate(credentials):
            response, body = self._get_once(url, params, credential, give_up_at)
            if response.status_code != 401 or error_body(body)[0] in ADVANCED_FEATURES_CODES:
                if n:
                    self._credentials.worked(credential)
                return response, body
            if n + 1 < len(credentials):
                log.info("insights_auth_refused", variable=credential.variable,
                         trying=credentials[n + 1].variable)
        return response, body

    def _get_once(self, url: str, params: dict[str, Any] | None, credential: Credential,
                  give_up_at: float) -> tuple[requests.Response, bytes]:
        # The whole exchange, headers included (a peer may drip them), ends by ``give_up_at``.
        left = max(0.001, give_up_at - self._monotonic())
        response = headers_by(left, lambda: self._session.get(
            url, params=params, auth=credential.auth, timeout=self._timeouts(give_up_at),
            allow_redirects=False, stream=True), self._session)
        with response:
            cap = self._page_cap if response.status_code == 200 else ERROR_CAP
            try:
                body = read_capped(response, cap, deadline=give_up_at, monotonic=self._monotonic)
            except AnswerTooLarge as exc:
                if response.status_code == 200:
                    raise InsightsBadResponse(
                        f"an Insights page is over {cap:,} bytes; not reading it",
                        reason="page_too_large", status=200) from exc
                body = b""  # an error page too long to be Twilio's: its status is enough
        return response, body

    def _get_json(self, url: str, params: dict[str, Any] | None, *,
                  call_sid: str, give_up_at: float) -> dict[str, Any]:
        """One page, with bounded in-process retries on 429, 5xx and network errors."""
        for attempt in range(1, self._max_attempts + 1):
            started = time.monotonic()
            cause: requests.RequestException
            status: int | None
            retry_after: float | None
            try:
                response, body = self._exchange(url, params, give_up_at)
            except AnswerTooSlow as exc:  # headers or body still arriving at the deadline
                self._report(None, started)
                self._check_budget(give_up_at, call_sid, cause=exc)
                raise self._over_budget(call_sid) from exc
            except _TRANSPORT_ERRORS as exc:
                self._report(None, started)
                self._check_budget(give_up_at, call_sid, cause=exc)
                status, retry_after, cause = None, None, exc
                problem = f"{type(exc).__name__}"
            else:
                self._report(response.status_code, started)
                if response.status_code == 200:
                    return json_object(body)
                if response.status_code != 429 and response.status_code < 500:
                    raise permanent_error(response.status_code, body, call_sid) \
                        from http_error(response)
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
                cause = http_error(response)
                problem = f"HTTP {status}{describe(body)}"
            if retry_after is not None and retry_after > self._max_inline_wait_s:
                raise InsightsUnavailable(
                    f"Insights asked to wait {retry_after:g} s ({problem})",
                    retry_after=retry_after, status=status,
                ) from cause
            if attempt == self._max_attempts:
                raise InsightsUnavailable(
                    f"Insights unavailable after {attempt} attempts ({problem})",
                    retry_after=retry_after, status=status,
                ) from cause
            wait = retry_after if retry_after is not None else self._backoff(attempt)
            self._check_budget(give_up_at, call_sid, cause=cause, wait_s=wait)
            log.info("insights_retry", call_sid=call_sid, status=status, attempt=attempt,
                     wait_s=round(wait, 3), problem=problem)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, never above ``max_inline_wait_s``."""
        base = self._backoff_s * 2 ** (attempt - 1)
        return min(self._max_inline_wait_s, base * (0.5 + self._rng.random() / 2))

    def _report(self, status: int | None, started: float) -> None:
        if self._on_request is not None:
            self._on_request(status, time.monotonic() - started)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = -1  # an unreadable port never equals the base's
    return scheme, (parts.hostname or "").lower(), port
