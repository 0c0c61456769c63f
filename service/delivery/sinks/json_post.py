"""One JSON POST to a receiver that is not ours to trust (PagerDuty, Teams).

No redirect is followed, the answer's body is read up to ``MAX_ANSWER_BYTES`` only,
and every wait is bounded by the (connect, read) timeout. The URL can be a
credential (a Teams Workflows URL carries its signature in the query), so errors
name the host only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from service.errors import DeliveryRetryable
from service.http import AnswerTooLarge, AnswerTooSlow, host_of, parse_retry_after, read_capped, user_agent

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


def post_json(session: requests.Session, url: str, body: Mapping[str, Any], *, who: str,
              timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> Answer:
    """POST ``body`` as JSON; ``DeliveryRetryable`` when the receiver cannot be reached."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": user_agent()}
    deadline = time.monotonic() + DEADLINE_S
    try:
        response = session.post(url, data=data, headers=headers, timeout=timeout,
                                allow_redirects=False, stream=True)
        with response:
            try:
                raw = read_capped(response, MAX_ANSWER_BYTES, deadline=deadline)
            except AnswerTooLarge:
                raw = b""  # the status is the answer; the body only adds a reason
            return Answer(response.status_code, dict(response.headers),
                          raw.decode("utf-8", errors="replace"))
    except AnswerTooSlow:
        raise DeliveryRetryable(f"{who} at {host_of(url)} was still answering after "
                                f"{DEADLINE_S:.0f} s") from None
    except (requests.RequestException, OSError) as err:
        # ``from None``: requests' message holds the full URL, which may carry a secret.
        raise DeliveryRetryable(
            f"{who} at {host_of(url)} could not be reached ({type(err).__name__})"
        ) from None


def raise_if_retryable(answer: Answer, who: str, now: datetime) -> None:
    """408, 429 and 5xx are worth another try (after ``Retry-After`` when given)."""
    if answer.status in (408, 429) or answer.status >= 500:
        raise DeliveryRetryable(f"{who} answered {answer.status}",
                                retry_after=parse_retry_after(answer.headers.get("Retry-After"), now),
                                status=answer.status)
