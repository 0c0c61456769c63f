"""Where alerts go: Slack, signed webhooks, or the log (domain code: no Flask, no RQ)."""

from service.sinks.base import AlertSink
from service.sinks.log import LogSink
from service.sinks.registry import UnknownSink, build_sinks, sink_by_id
from service.sinks.slack import SlackSink
from service.sinks.webhook import WebhookSink

__all__ = ["AlertSink", "LogSink", "SlackSink", "UnknownSink", "WebhookSink", "build_sinks",
           "sink_by_id"]
