"""The sink types callwatch knows, and the configured sinks of one process.

Adding a sink type is one module that exposes ``SINK_TYPE`` and one line in
``SINK_TYPES`` below. ``Sinks`` holds the configured sinks by name: the analysis
step routes an alert to names, a delivery job carries only the name (never a URL:
it can be a secret, and job arguments are stored in Redis), and the delivery job
gets the sink back from its name with ``Sinks.get``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import redis as redis_lib
import requests

from service.delivery.digests.periods import parse_digest
from service.delivery.digests.sending import DigestingSink
from service.delivery.digests.store import DigestStore
from service.delivery.sinks import email, log, pagerduty, slack, teams, webhook
from service.delivery.sinks.base import AlertSink, SinkEnv, SinkSpec, SinkType
from service.errors import PermanentError
from service.http_session import http_session
from service.settings import Settings

SINK_TYPES: dict[str, SinkType] = {t.name: t for t in (
    slack.SINK_TYPE,
    webhook.SINK_TYPE,
    log.SINK_TYPE,
    pagerduty.SINK_TYPE,
    teams.SINK_TYPE,
    email.SINK_TYPE,
)}


def register(sink_type: SinkType) -> None:
    """Add a sink type (what each line above does; a plug-in or a test adds its own)."""
    if sink_type.name in SINK_TYPES:
        raise ValueError(f"a sink type is already named {sink_type.name!r}")
    SINK_TYPES[sink_type.name] = sink_type


class UnknownSink(PermanentError):
    """A delivery job names a sink the current configuration does not have.

    Permanent: the configuration changed after the alert was queued (a sink removed
    or renamed), and retrying will not bring the old sink back.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"no configured sink is named {name!r}; was the configuration "
                         "changed after the alert was queued?", reason="unknown_sink")
        self.sink = name


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Sinks:
    """The configured sinks by name; builds each sink when it is first asked for."""

    def __init__(self, specs: Iterable[SinkSpec], env: SinkEnv) -> None:
        """``env.redis`` is where sinks with ``digest:`` count what they take (None: they
        send as any sink)."""
        self._specs = {spec.name: spec for spec in specs}
        self._aliases = {str(spec.options["legacy_name"]): spec.name
                         for spec in self._specs.values() if spec.options.get("legacy_name")}
        self._env = env
        self._built: dict[str, AlertSink] = {}

    @classmethod
    def from_settings(cls, settings: Settings, file_sinks: Sequence[SinkSpec] = (), *,
                      session: requests.Session | None = None,
                      clock: Callable[[], datetime] = _utc_now,
                      redis: redis_lib.Redis | None = None) -> Sinks:
        """The sinks the environment variables and the routing file (``file_sinks``)
        describe; the log sink when there are none. With ``redis``, a sink with ``digest:``
        counts its alerts for the period's digest instead of posting them."""
        specs = specs_from_settings(settings, file_sinks)
        return cls(specs, SinkEnv(settings, session or http_session(os.environ), clock, redis))

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def spec(self, name: str) -> SinkSpec:
        name = self._aliases.get(name, name)
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownSink(name) from None

    def get(self, name: str) -> AlertSink:
        """The sink named ``name``; ``UnknownSink`` if there is none now."""
        spec = self.spec(name)
        if spec.name not in self._built:
            sink = SINK_TYPES[spec.type].build(spec, self._env)
            digest = spec.options.get("digest")
            if digest and self._env.redis is not None:
                sink = DigestingSink(sink, parse_digest(digest, f"sinks.{spec.name}.digest"),
                                     DigestStore(self._env.redis), self._env.clock)
            self._built[spec.name] = sink
        return self._built[spec.name]


def plain_specs(settings: Settings) -> list[SinkSpec]:
    """The sinks the plain variables describe: ``slack`` for ``SLACK_WEBHOOK_URL``, one
    ``webhook-<host>`` per ``ALERT_WEBHOOK_URLS`` entry (``ConfigError`` for a bad one)."""
    return [spec for sink_type in SINK_TYPES.values() for spec in sink_type.from_settings(settings)]


def specs_from_settings(settings: Settings, file_sinks: Sequence[SinkSpec] = ()) -> list[SinkSpec]:
    """The plain variables' sinks, then the routing file's; ``log`` when there are none
    (so nothing is lost)."""
    return plain_specs(settings) + list(file_sinks) or [SinkSpec(log.LOG_SINK_ID, "log")]
