"""callwatch's exception tree.

Every error callwatch raises on purpose derives from ``CallwatchError``. The tree
separates what a job should retry from what it should give up on, so the RQ edge
needs one ``except`` per branch and nothing else::

    CallwatchError
     ├── ConfigError                 a bad or missing environment variable (stops start-up)
     ├── InvalidInput                bad input from a user or a file (CLI, saved responses)
 │    └── InvalidField           one named field of a status callback is malformed
     ├── RetryableError              try again later; ``retry_after`` seconds when known
     │    ├── InsightsUnavailable    Insights answered 429/5xx, timed out or could not be reached
     │    └── DeliveryRetryable      a sink answered 429/5xx/408, timed out or could not be reached
     ├── EventsNotReady              Insights answered 404: the call's events are not there yet
     └── PermanentError              retrying cannot help; ``reason`` is machine-readable
          ├── InsightsAccessDenied   401/403: Advanced Features off or wrong credentials
          ├── InsightsBadResponse    Insights answered something we cannot read, or an off-site page
          └── DeliveryRejected       a sink refused the alert for good (Slack 404, webhook 410, ...)

Errors raised because of a library's exception are raised ``from`` it.
"""

from __future__ import annotations


class CallwatchError(Exception):
    """Base of every error callwatch raises on purpose."""


class ConfigError(CallwatchError):
    """An environment variable is missing or malformed; ``variable`` names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


class InvalidInput(CallwatchError):
    """Input from a person or a file that callwatch cannot use."""


class InvalidField(InvalidInput):
    """A status-callback field that is missing or malformed; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class RetryableError(CallwatchError):
    """A transient failure: the same work may succeed later.

    ``retry_after`` is the wait the other side asked for (``Retry-After``), in
    seconds, or ``None`` when it said nothing.
    """

    def __init__(self, message: str, *, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class InsightsUnavailable(RetryableError):
    """The Insights API could not answer now (429, 5xx, timeout, connection error)."""


class DeliveryRetryable(RetryableError):
    """A sink could not take the alert now (429, 5xx, 408, timeout, connection error)."""


class EventsNotReady(CallwatchError):
    """Insights has nothing for this call yet (HTTP 404): check again later."""


class PermanentError(CallwatchError):
    """Retrying cannot help. ``reason`` is a short machine-readable code."""

    def __init__(self, message: str, *, reason: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class InsightsAccessDenied(PermanentError):
    """401/403 from Insights: Advanced Features off (17000/17007) or wrong credentials."""


class InsightsBadResponse(PermanentError):
    """Insights answered something unreadable, or pointed a page at another host."""


class DeliveryRejected(PermanentError):
    """A sink refused the alert for good (Slack 400/403/404/410, webhook 4xx, 410 gone)."""
