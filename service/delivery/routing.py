"""Which sinks an alert goes to, and under which route's storm and ratio settings.

With only the plain environment variables there are no routes: every alert goes to
every configured sink, under one implicit route named ``default`` with the default
storm settings. The router is asked once per alert, when the analysis step creates
it; each sink it names gets one delivery (or the alert is folded into an incident).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from service.analysis.alert import Alert
from service.delivery.incidents.policy import RatioPolicy, StormPolicy

DEFAULT_ROUTE = "default"
DEFAULT_STORM = StormPolicy()


@dataclass(frozen=True)
class RouteMatch:
    """One route that took an alert: its name, its sinks, its storm and ratio settings."""

    route: str
    sinks: tuple[str, ...]
    storm: StormPolicy | None = field(default_factory=StormPolicy)
    ratio: RatioPolicy | None = None


class Router:
    """Every alert to every sink, under the implicit ``default`` route."""

    def __init__(self, sinks: Sequence[str], *, storm: StormPolicy | None = DEFAULT_STORM,
                 ratio: RatioPolicy | None = None) -> None:
        self._default = RouteMatch(DEFAULT_ROUTE, tuple(sinks), storm, ratio)

    def route(self, alert: Alert) -> list[RouteMatch]:
        """The routes that take ``alert`` (empty: unrouted)."""
        return [self._default]

    def sinks(self, alert: Alert) -> list[str]:
        """Every sink the alert's routes name, each once, in order."""
        return list(dict.fromkeys(s for match in self.route(alert) for s in match.sinks))
