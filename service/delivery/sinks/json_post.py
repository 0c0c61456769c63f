"""One JSON POST to a receiver that is not ours to trust: the one path every HTTP sink
(Slack, webhooks, PagerDuty, Teams) posts through, and the one rule of which answers
are worth another try (``raise_if_retryable``: 408, 429 and 5xx).

No redirect is followed, the answer's body is read up to ``MAX_ANSWER_BYTES`` only,
and the whole exchange (connect, the answer's headers, its body) ends by the send's
deadline: a peer that drips its headers a byte at a time, each within the per-read
timeout, is given up on at the deadline too (the request runs in a helper thread that
is left to its own timeouts; its connection is closed when it returns). The
URL can be a credential (a Slack or Teams Workflows URL is one), so errors name the
receiver or its host only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from service.delivery.sinks.fitting import json_bytes
from service.errors import DeliveryRetryable
from service.http import (
    AnswerTooLarge,
    AnswerTooSlow,
    headers_by,
    host_of,
    parse_retry_after,
    read_capped,
    user_agent,
)

DEFAULT_TIMEOUT = (3.05, 10.0)
MAX_ANSWER_BYTES = 4096
#: The longest one POST may spend reading the receiver's answer, from the request's start.
DEADLINE_S = 15.0


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: status, headers and the first few KB of its body."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def post(session: requests.Session, url: str, data: bytes, headers: Mapping[str, str], *,
         who: str, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
         deadline_s: float = DEADLINE_S, monotonic: Callable[[], float] = time.monotonic,
         read_body: bool = True, slow_answer_retryable: bool = True) -> Answer:
    """POST ``data`` exactly as given; ``DeliveryRetryable`` when the receiver cannot be
    reached. ``who`` names the receiver in errors. Without ``read_body`` the answer's body
    is never read; an answer too large (or, unless ``slow_answer_retryable``, too slow)
    has an empty ``text``: the status is the answer, the body only adds a reason."""
    deadline = monotonic() + deadline_s
    try:
        response = headers_by(deadline_s, lambda: session.post(
            url, data=data, headers={"User-Agent": user_agent(), **headers}, timeout=timeout,
            allow_redirects=False, stream=True), session)
        with response:
            raw = b""
            if read_body:
                try:
                    raw = read_capped(response, MAX_ANSWER_BYTES, deadline=deadline, monotonic=monotonic)
                except AnswerTooLarge:
                    pass
                except AnswerTooSlow:
                    if slow_answer_retryable:
                        raise
            return Answer(response.status_code, dict(response.headers),
                          raw.decode("utf-8", errors="replace"))
    except AnswerTooSlow:
        raise DeliveryRetryable(f"{who} was still answering after {deadline_s:.0f} s") from None
    except (requests.RequestException, OSError) as err:
        # ``from None``: requests' message holds the full URL, which may carry a secret.
        raise DeliveryRetryable(f"{who} could not be reached ({type(err).__name__})") from None


def post_json(session: requests.Session, url: str, body: Mapping[str, Any], *, who: str,
              timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> Answer:
    """POST ``body`` as JSON (UTF-8); errors name ``who`` and the URL's host."""
    return post(session, url, json_bytes(body), {"Content-Type": "application/json"},
                who=f"{who} at {host_of(url)}", timeout=timeout)


def raise_if_retryable(answer: Answer, who: str, now: datetime) -> None:
    """408, 429 and 5xx are worth another try (after ``Retry-After`` when given)."""
    if answer.status in (408, 429) or answer.status >= 500:
        raise DeliveryRetryable(f"{who} answered {answer.status}",
                                retry_after=parse_retry_after(answer.headers.get("Retry-After"), now),
                                status=answer.status)
