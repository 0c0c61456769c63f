"""Making one alert's message fit its receiver's size limit.

Each receiver refuses a message over its limit for good (PagerDuty answers 400 over
512 KB and the page is lost; Teams refuses a card over about 28 KB). Twilio's texts
are already cut at 1,000 characters when the alert is built
(``service.analysis.alert.MAX_TWILIO_TEXT``); what can still grow is the number of
issues. ``fit_issues`` keeps the most leading issues (errors come first) whose message
fits, and counts the rest in ``truncated_issues``, which every renderer shows as
"…and N more". The alert keeps its id, summary and schema version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from service.analysis.alert import Alert

#: The receivers' limits on one message, in bytes of what is sent.
PAGERDUTY_MAX_BYTES = 512 * 1000
TEAMS_MAX_BYTES = 27_000  # Teams: "about 28 KB"; kept under it with a margin
EMAIL_MAX_BYTES = 1000 * 1000
WEBHOOK_MAX_BYTES = 256 * 1000


def json_bytes(body: Any, *, ascii_only: bool = False) -> bytes:
    """``body`` as the sinks send it: compact JSON, UTF-8 (or ASCII with escapes)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=ascii_only).encode()


def keep_issues(alert: Alert, count: int) -> Alert:
    """``alert`` with its first ``count`` issues; the others join ``truncated_issues``."""
    if count >= len(alert.issues):
        return alert
    return replace(alert, issues=alert.issues[:count],
                   truncated_issues=alert.truncated_issues + len(alert.issues) - count)


def fit_issues(alert: Alert, size: Callable[[Alert], int], limit: int) -> Alert:
    """``alert`` itself when ``size(alert) <= limit``, else with the most leading issues
    that fit (at least one: the texts are capped, so one issue always fits)."""
    if size(alert) <= limit or len(alert.issues) <= 1:
        return alert
    low, high = 1, len(alert.issues) - 1  # ``low`` fits (or is the floor), the full set does not
    while low < high:
        middle = (low + high + 1) // 2
        if size(keep_issues(alert, middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return keep_issues(alert, low)
