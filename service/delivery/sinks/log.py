"""The fallback sink: with no Slack and no webhook configured, alerts go to the log.

Every alert is one ``alert`` line at warning level holding the whole payload, so
nothing is lost and log-based alerting can pick it up. Phone numbers are masked;
``client:`` identities are kept (they name the agent whose device failed).
"""

from __future__ import annotations

from typing import Any

import structlog

from service.analysis.alert import Alert
from service.calls import mask_number
from service.delivery.incidents.events import IncidentEvent
from service.delivery.sinks.base import SinkEnv, SinkSpec, SinkType

LOG_SINK_ID = "log"


class LogSink:
    """Writes each alert to the structured log; never fails."""

    name = LOG_SINK_ID
    pace_s: float | None = None
    kind: str = "log"

    def __init__(self, logger: Any = None) -> None:
        self._log = logger if logger is not None else structlog.get_logger(__name__)

    def __repr__(self) -> str:
        return "LogSink()"

    def send(self, alert: Alert) -> None:
        """Log the alert's payload with its numbers masked."""
        payload = alert.to_payload()
        call = dict(payload["call"])
        call["from"] = mask_number(call.get("from"))
        call["to"] = mask_number(call.get("to"))
        payload["call"] = call
        self._log.warning("alert", **payload)

    def send_incident(self, event: IncidentEvent) -> None:
        """Log the incident event's data (it holds no phone numbers)."""
        self._log.warning("incident", type=event.type, webhook_id=event.webhook_id, **event.data)


def _build(spec: SinkSpec, env: SinkEnv) -> LogSink:
    sink = LogSink()
    sink.name = spec.name
    return sink


SINK_TYPE = SinkType("log", _build)
