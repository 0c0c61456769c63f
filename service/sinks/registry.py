"""Which sinks the settings ask for, and finding one again from its id.

The analysis job calls ``build_sinks`` and enqueues one delivery job per sink,
passing only the ``sink_id`` (never a URL: it can be a secret, and job arguments
are stored in Redis). The delivery job calls ``sink_by_id`` with the same
settings to get the sink back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import requests

from service.errors import ConfigError, PermanentError
from service.settings import Settings
from service.sinks.base import AlertSink
from service.sinks.log import LOG_SINK_ID, LogSink
from service.sinks.slack import SLACK_SINK_ID, SlackSink
from service.sinks.webhook import WebhookSink, webhook_sink_id


class UnknownSink(PermanentError):
    """A delivery job names a sink the current settings do not configure.

    Permanent: the configuration changed after the alert was queued (a URL removed
    or edited), and retrying will not bring the old sink back.
    """

    def __init__(self, sink_id: str) -> None:
        super().__init__(f"no configured sink has id {sink_id!r}; was SLACK_WEBHOOK_URL or "
                         "ALERT_WEBHOOK_URLS changed after the alert was queued?",
                         reason="unknown_sink")
        self.sink_id = sink_id


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_sinks(settings: Settings, *, session: requests.Session | None = None,
                clock: Callable[[], datetime] = _utc_now) -> list[AlertSink]:
    """One Slack sink, one webhook sink per URL, or the log sink when neither is set."""
    sinks: list[AlertSink] = []
    if settings.slack_webhook_url:
        sinks.append(SlackSink(settings.slack_webhook_url, clock=clock))
    if settings.alert_webhook_urls:
        if not settings.alert_webhook_secret:
            raise ConfigError("ALERT_WEBHOOK_SECRET", "required when ALERT_WEBHOOK_URLS is set")
        shared = session or requests.Session()
        seen: set[str] = set()
        for url in settings.alert_webhook_urls:
            if webhook_sink_id(url) in seen:
                continue  # the same URL twice would deliver every alert twice
            seen.add(webhook_sink_id(url))
            sinks.append(WebhookSink(url, settings.alert_webhook_secret, session=shared,
                                     clock=clock))
    if not sinks:
        sinks.append(LogSink())
    return sinks


def sink_by_id(settings: Settings, sink_id: str, *, session: requests.Session | None = None,
               clock: Callable[[], datetime] = _utc_now) -> AlertSink:
    """The sink ``build_sinks`` gave this id; ``UnknownSink`` if there is none now."""
    if sink_id == SLACK_SINK_ID and settings.slack_webhook_url:
        return SlackSink(settings.slack_webhook_url, clock=clock)
    if sink_id == LOG_SINK_ID:
        return LogSink()
    if sink_id.startswith("webhook-") and settings.alert_webhook_secret:
        for url in settings.alert_webhook_urls:
            if webhook_sink_id(url) == sink_id:
                return WebhookSink(url, settings.alert_webhook_secret, session=session,
                                   clock=clock)
    raise UnknownSink(sink_id)
