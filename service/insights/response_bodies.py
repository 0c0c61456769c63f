"""What an Insights answer says: the JSON page, or Twilio's error code and message, and the
callwatch error each status becomes (``service.errors``).

Bodies arrive here already read, within ``InsightsClient``'s size cap and deadline.
Both of Twilio's error shapes are read: the legacy ``{code, message}`` and RFC 9457's
``{code, detail, title}``.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from service.errors import (
    EventsNotReady,
    InsightsAccessDenied,
    InsightsBadResponse,
)

#: Twilio codes meaning Voice Insights Advanced Features were off (reference 5.3).
ADVANCED_FEATURES_CODES = frozenset({17000, 17007})


def json_object(body: bytes) -> dict[str, Any]:
    """A 200 page's JSON object, or ``InsightsBadResponse`` saying why it is not one."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InsightsBadResponse("Insights answered 200 with a body that is not JSON",
                                  reason="invalid_json", status=200) from exc
    if not isinstance(payload, dict):
        raise InsightsBadResponse("Insights answered 200 with JSON that is not an object",
                                  reason="invalid_payload", status=200)
    return payload


def error_body(body: bytes) -> tuple[int | None, str | None]:
    """Twilio's code and message from either error shape (legacy or RFC 9457)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(payload, dict):
        return None, None
    code = payload.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = payload.get("message") or payload.get("detail") or payload.get("title")
    return code, str(message) if message else None


def describe(body: bytes) -> str:
    """``": Twilio <code> <message>"`` for a log line, or "" when the body says neither."""
    code, message = error_body(body)
    if code is None and message is None:
        return ""
    return f": Twilio {code or '-'} {message or ''}".rstrip()


def http_error(response: requests.Response) -> requests.HTTPError:
    """The requests error a callwatch error is raised ``from`` (the URL holds no secret)."""
    return requests.HTTPError(f"{response.status_code} for {response.url}", response=response)


def permanent_error(status: int, body: bytes, call_sid: str) -> Exception:
    """The callwatch error for a non-retryable, non-200 answer."""
    code, message = error_body(body)
    said = f" (Twilio {code or status}: {message or 'no message'})"
    error: Exception
    if status in (401, 403):
        if code in ADVANCED_FEATURES_CODES:
            error = InsightsAccessDenied(
                "Voice Insights Advanced Features were not enabled when this call happened: "
                "enable them in the Twilio Console (Voice > Settings > Voice Insights "
                f"Advanced Features){said}",
                reason="advanced_features_off", status=status,
            )
        else:
            error = InsightsAccessDenied(
                "Insights refused the credentials: check TWILIO_ACCOUNT_SID and "
                "TWILIO_AUTH_TOKEN (and TWILIO_AUTH_TOKEN_SECONDARY), or TWILIO_API_KEY_SID "
                f"and TWILIO_API_KEY_SECRET{said}",
                reason="bad_credentials", status=status,
            )
    elif status == 404:
        error = EventsNotReady(f"Insights has no events for {call_sid} yet{said}")
    elif 400 <= status < 500:
        error = InsightsBadResponse(f"Insights refused the request with {status}{said}",
                                    reason="request_rejected", status=status)
    else:
        error = InsightsBadResponse(f"Insights answered an unexpected {status}{said}",
                                    reason="unexpected_status", status=status)
    return error
