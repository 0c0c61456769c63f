"""Where alerts go: one module per sink type (domain code: no Flask, no RQ)."""

from service.delivery.sinks.base import AlertSink, SinkEnv, SinkSpec, SinkType
from service.delivery.sinks.log import LogSink
from service.delivery.sinks.registry import SINK_TYPES, Sinks, UnknownSink
from service.delivery.sinks.slack import SlackSink
from service.delivery.sinks.webhook import WebhookSink

__all__ = ["SINK_TYPES", "AlertSink", "LogSink", "SinkEnv", "SinkSpec", "SinkType", "Sinks",
           "SlackSink", "UnknownSink", "WebhookSink"]
