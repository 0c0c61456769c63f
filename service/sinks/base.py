"""The plug point every alert destination implements.

A sink takes one ``Alert`` and either delivers it or says why not, through the
exception tree in ``service.errors``: ``DeliveryRetryable`` (try again, after
``retry_after`` seconds when the receiver said so) or ``DeliveryRejected`` (the
receiver refused it for good; ``reason`` says why). Sinks keep no state between
calls: de-duplication and pacing live in ``service.delivery``.
"""

from __future__ import annotations

from typing import Protocol

from service.analysis.alert import Alert


class AlertSink(Protocol):
    """Somewhere an alert can be sent: Slack, a signed webhook, the log."""

    #: Stable across processes and safe to log or put in Redis keys and job
    #: arguments: ``slack``, ``webhook-<8 hex>`` or ``log``. Never holds a secret.
    sink_id: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` once; raise ``DeliveryRetryable`` or ``DeliveryRejected``."""
        ...
