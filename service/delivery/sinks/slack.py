"""Alerts to a Slack incoming webhook, through slack_sdk's ``WebhookClient``.

``WebhookClient.send`` returns 4xx/5xx answers instead of raising, so every
answer is checked here: 200 ``ok`` is delivered; 429 (with ``Retry-After``), 408
and 5xx, timeouts and connection errors are retryable; 400/403/404/410 and other
4xx are permanent and carry Slack's own reason (``no_service``,
``channel_is_archived``, ``invalid_payload``...). The client gets no retry
handlers: a worker must not sleep on a rate limit, it reschedules the job.
The webhook URL is itself a credential, so it never appears in a log or an error.
"""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackRequestError
from slack_sdk.webhook import WebhookClient

from service.analysis.alert import Alert
from service.delivery.sinks.base import SinkEnv, SinkSpec, SinkType
from service.delivery.sinks.slack_blocks import slack_message
from service.errors import DeliveryRejected, DeliveryRetryable
from service.http import parse_retry_after, require_secure_url, user_agent

if TYPE_CHECKING:
    from service.delivery.incidents.events import IncidentEvent
    from service.settings import Settings

DEFAULT_TIMEOUT = 10.0
SLACK_SINK_ID = "slack"
#: Slack takes about one message a second per webhook; the margin absorbs the few
#: milliseconds between taking the turn and the request arriving.
SLACK_PACE_S = 1.1
_REASON = re.compile(r"^[a-z0-9_]{1,64}$")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _quiet_logger() -> logging.Logger:
    """A logger for slack_sdk that emits nothing: its debug lines print the URL."""
    logger = logging.Logger("callwatch.slack_sdk", level=logging.CRITICAL + 1)
    logger.propagate = False
    return logger


class SlackSink:
    """Posts one Block Kit message per alert to ``SLACK_WEBHOOK_URL``."""

    pace_s: float | None = SLACK_PACE_S
    kind: str = "chat"

    def __init__(self, url: str, *, name: str = SLACK_SINK_ID, client: WebhookClient | None = None,
                 timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        require_secure_url(url, "SLACK_WEBHOOK_URL")
        self.name: str = name
        self._client = client or WebhookClient(
            url, timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[], logger=_quiet_logger(), user_agent_suffix=user_agent(),
        )
        self._clock = clock

    def __repr__(self) -> str:
        return f"SlackSink(name={self.name!r})"

    def send(self, alert: Alert) -> None:
        """Post the alert's message; 200 ``ok`` is delivered, anything else raises."""
        self._post(slack_message(alert))

    def send_incident(self, event: IncidentEvent) -> None:
        """Post the incident event's message; answers are read as for an alert."""
        # Imported here: the incidents package renders with this package's Block Kit helpers.
        from service.delivery.incidents.messages import slack_incident_message
        self._post(slack_incident_message(event))

    def _post(self, body: dict[str, Any]) -> None:
        try:
            response = self._client.send_dict(body)
        except SlackRequestError:
            raise DeliveryRejected("SLACK_WEBHOOK_URL is not a usable URL",
                                   reason="invalid_url") from None
        except (OSError, http.client.HTTPException) as err:
            # ``from None``: urllib errors can quote the request, and the URL is a secret.
            raise DeliveryRetryable(
                f"Slack could not be reached ({type(err).__name__})"
            ) from None
        except (UnicodeError, LookupError) as err:
            # slack_sdk decodes the body itself: a proxy's page in another (or an unknown)
            # charset. Slack's own answers are ASCII, so this was not Slack saying "ok".
            raise DeliveryRetryable(
                f"Slack's answer could not be read ({type(err).__name__})"
            ) from None
        self._check(response.status_code, response.body or "", response.headers or {})

    def _check(self, status: int, body: str, headers: Mapping[str, Any]) -> None:
        reason = body.strip()
        if status == 200 and reason == "ok":
            return
        if status == 429 or status == 408 or status >= 500:
            retry_after = parse_retry_after(_header(headers, "Retry-After"), self._clock())
            raise DeliveryRetryable(f"Slack answered {status}", retry_after=retry_after,
                                    status=status)
        if not _REASON.match(reason):
            reason = f"http_{status}"
        if 300 <= status < 400:
            reason = "redirect"
        elif status < 300:
            # Slack took the request but did not say ok: sending again could duplicate it.
            reason = "unexpected_response"
        raise DeliveryRejected(f"Slack refused the alert: {status} {reason}",
                               reason=reason, status=status)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """A header by name, whatever its case (urllib gives a message, errors a dict)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return str(value)
    return None


def _build(spec: SinkSpec, env: SinkEnv) -> SlackSink:
    return SlackSink(spec.options["url"], name=spec.name, clock=env.clock)


def _from_settings(settings: Settings) -> list[SinkSpec]:
    if not settings.slack_webhook_url:
        return []
    return [SinkSpec(SLACK_SINK_ID, "slack", {"url": settings.slack_webhook_url})]


SINK_TYPE = SinkType("slack", _build, _from_settings)
