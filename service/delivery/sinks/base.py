"""The plug point every alert destination implements, and how a sink type declares itself.

A sink takes one ``Alert`` and either delivers it or says why not, through the
exception tree in ``service.errors``: ``DeliveryRetryable`` (try again, after
``retry_after`` seconds when the receiver said so) or ``DeliveryRejected`` (the
receiver refused it for good; ``reason`` says why). Sinks keep no state between
calls: de-duplication and pacing live in ``service.delivery``.

A sink **type** is one module that exposes ``SINK_TYPE``: its type name, the options
a routing file gives it and their checks, how a sink is built from its ``SinkSpec``,
and which sinks the plain environment variables describe.
``service.delivery.sinks.registry`` lists the types, one line each; the routing file's
parser knows them only through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import requests

from service.analysis.alert import Alert
from service.delivery.digests.periods import parse_digest
from service.errors import ConfigError
from service.http import require_secure_url

if TYPE_CHECKING:
    from redis import Redis

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
    #: ``chat``, ``pager``, ``email``, ``webhook``, ``log`` or ``digest`` (a sink with
    #: ``digest:``). During an incident, per-call alerts are folded into it for every kind
    #: but ``webhook`` and ``digest`` (which get every alert).
    kind: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` once; raise ``DeliveryRetryable`` or ``DeliveryRejected``."""
        ...

    def send_incident(self, event: IncidentEvent) -> None:
        """Deliver one incident event (``incident.opened|updated|resolved``) once; raises
        like ``send``. Each sink type renders it from ``service.delivery.incidents.content``."""
        ...


@dataclass(frozen=True)
class SinkSpec:
    """One configured sink: its name, its type and the type's options (may hold secrets)."""

    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SinkEnv:
    """What every sink may use: the settings, one shared HTTP session, the clock, and
    Redis when the process has one (a pager sink keeps its groups' quiet times there)."""

    settings: Settings
    session: requests.Session
    clock: Callable[[], datetime]
    redis: Redis | None = None


class SinkOptionError(Exception):
    """A routing file's option for one sink is wrong: ``key`` (``""``: the sink itself) and why."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def check_url(options: dict[str, Any], key: str = "url") -> dict[str, Any]:
    """An option holding an http(s) URL: HTTPS, or plain HTTP to a loopback host only."""
    check_text(options, key)
    try:
        require_secure_url(options[key], key)
    except ConfigError as error:
        raise SinkOptionError(key, error.message) from None
    return options


def check_digest(options: dict[str, Any]) -> dict[str, Any]:
    """The optional ``digest:`` of a slack, teams or email sink (``service.delivery.digests``)."""
    if "digest" in options:
        try:
            parse_digest(options["digest"], "digest")
        except ConfigError as error:
            raise SinkOptionError(error.variable, error.message) from None
    return options


def check_text(options: dict[str, Any], key: str) -> dict[str, Any]:
    """An option that must be non-empty text."""
    if not isinstance(options[key], str) or not options[key].strip():
        raise SinkOptionError(key, "must be text")
    return options


def _no_settings(settings: Settings) -> list[SinkSpec]:
    return []


def _no_check(options: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    return options


@dataclass(frozen=True)
class SinkType:
    """A kind of sink, as its module declares it."""

    name: str
    build: Callable[[SinkSpec, SinkEnv], AlertSink]
    #: The sinks the plain environment variables configure (``SLACK_WEBHOOK_URL``...).
    from_settings: Callable[[Settings], list[SinkSpec]] = _no_settings
    #: The routing file's options for a sink of this type: required, then optional.
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    #: Options that may hold a secret: masked whenever they are shown.
    secrets: frozenset[str] = frozenset()
    #: Checks (and normalises) the given options, with the environment for what they
    #: need from it; raises ``SinkOptionError``.
    check: Callable[[dict[str, Any], Mapping[str, str]], dict[str, Any]] = _no_check
    #: The variable whose sinks (``from_settings``) take their names, for a clash message.
    variable: str | None = None
