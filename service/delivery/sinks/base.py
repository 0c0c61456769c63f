"""The plug point every alert destination implements, and how a sink type declares itself.

A sink takes one ``Alert`` and either delivers it or says why not, through the
exception tree in ``service.errors``: ``DeliveryRetryable`` (try again, after
``retry_after`` seconds when the receiver said so) or ``DeliveryRejected`` (the
receiver refused it for good; ``reason`` says why). Sinks keep no state between
calls: de-duplication and pacing live in ``service.delivery``.

A sink **type** is one module that exposes ``SINK_TYPE``: its type name, how a sink
is built from its ``SinkSpec``, and which sinks the plain environment variables
describe. ``service.delivery.sinks.registry`` lists the types, one line each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import requests

from service.analysis.alert import Alert

if TYPE_CHECKING:
    from service.delivery.incidents.events import IncidentEvent
    from service.settings import Settings


class AlertSink(Protocol):
    """Somewhere an alert can be sent: Slack, a signed webhook, the log."""

    #: The sink's name (``slack``, ``webhook-crm-example-com``, ``log``, or a routing
    #: file's): stable across processes and safe to log or put in Redis keys and job
    #: arguments. Never holds a secret.
    name: str
    #: Seconds between two messages to this sink across every worker (None: unpaced).
    pace_s: float | None
    #: ``chat``, ``pager``, ``email``, ``webhook`` or ``log``. During an incident, per-call
    #: alerts are folded into it for every kind but ``webhook`` (which gets every alert).
    kind: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` once; raise ``DeliveryRetryable`` or ``DeliveryRejected``."""
        ...

    def send_incident(self, event: IncidentEvent) -> None:
        """Deliver one incident event (``incident.opened|updated|resolved``) once; raises
        like ``send``. ``service.delivery.incidents.messages`` renders it per kind of sink."""
        ...


@dataclass(frozen=True)
class SinkSpec:
    """One configured sink: its name, its type and the type's options (may hold secrets)."""

    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SinkEnv:
    """What every sink may use: the settings, one shared HTTP session, the clock."""

    settings: Settings
    session: requests.Session
    clock: Callable[[], datetime]


@dataclass(frozen=True)
class SinkType:
    """A kind of sink, as its module declares it."""

    name: str
    build: Callable[[SinkSpec, SinkEnv], AlertSink]
    #: The sinks the plain environment variables configure (``SLACK_WEBHOOK_URL``...).
    from_settings: Callable[[Settings], list[SinkSpec]] = lambda settings: []
