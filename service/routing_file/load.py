"""The one loader the edges call (the WSGI app, worker start-up, the CLI): the settings,
then the routing file they name, checked against the sinks the plain variables describe.

``Settings`` holds environment values only (the routing file's raw text or path among
them); parsing the file needs the sink types, so it happens here, above them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from service.delivery.sinks.base import SinkSpec
from service.delivery.sinks.registry import SINK_TYPES, plain_specs, specs_from_settings
from service.errors import ConfigError
from service.routing_file.parse import RoutingConfig, parse_config
from service.routing_file.yaml_reading import read_file
from service.settings import Settings


@dataclass(frozen=True)
class Configuration:
    """Everything a process is configured with: the settings and the parsed routing file."""

    settings: Settings
    #: The routing file, parsed (None: neither variable names one).
    routing: RoutingConfig | None = field(default=None, repr=False)

    @property
    def sinks(self) -> list[SinkSpec]:
        """Every configured sink: the plain variables', then the file's (``log`` if none)."""
        return specs_from_settings(self.settings, self.routing.sinks if self.routing else ())

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Configuration:
        """Read and check every variable and the routing file; ``ConfigError`` names the first bad one."""
        settings = Settings.from_env(environ)
        return cls(settings, load(settings, environ))


def load(settings: Settings, environ: Mapping[str, str]) -> RoutingConfig | None:
    """The routing file ``settings`` name, checked; ``None`` when there is none.

    ``${NAME}`` in the file is read from ``environ``. The names the plain variables
    already use (``slack``, ``webhook-<host>``) may be named by routes, not reused.
    """
    plain = {spec.name: SINK_TYPES[spec.type].variable or spec.type for spec in plain_specs(settings)}
    path = settings.callwatch_config_file
    if path:
        text = read_file(path, "CALLWATCH_CONFIG_FILE")  # capped: see yaml_reading
        return parse_config(text, environ, variable="CALLWATCH_CONFIG_FILE", plain_sinks=plain)
    if settings.callwatch_config:
        return parse_config(settings.callwatch_config, environ, variable="CALLWATCH_CONFIG",
                            plain_sinks=plain)
    return None


def configuration_or_exit(environ: Mapping[str, str]) -> Configuration:
    """The configuration for a process that starts: a bad value prints one line naming its
    variable and exits with code 2 (the web and worker entry points, gunicorn's master)."""
    try:
        return Configuration.from_env(environ)
    except ConfigError as error:
        print(f"callwatch: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
