"""Which sinks an alert goes to, and under which route's storm and ratio settings.

With only the plain environment variables there are no routes: every alert goes to
every configured sink, under one implicit route named ``default`` with the default
storm settings. A routing file (``service.routing_file``) adds ordered routes: the first
route whose matcher holds takes the alert, and routes with ``continue: true`` let
the next ones look too; ``default`` takes what no route took; a route with no
sinks drops what it takes. An alert that nothing takes is *unrouted*
(``route`` answers an empty list). The router is asked once per alert, when the
analysis step creates it; each sink it names gets one delivery (or the alert is
folded into an incident).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from service.analysis.alert import Alert
from service.analysis.headline import identity
from service.delivery.incidents.policy import DEFAULT_STORM, RatioPolicy, StormPolicy
from service.routing_file.matchers import Matcher, glob_matches
from service.routing_file.parse import Route, RoutingConfig

DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class RouteMatch:
    """One route that took an alert: its name, its sinks, its storm and ratio settings."""

    route: str
    sinks: tuple[str, ...]
    storm: StormPolicy | None = field(default_factory=StormPolicy)
    ratio: RatioPolicy | None = None


class Router:
    """Routes alerts; with no routes, every alert to every sink under ``default``."""

    def __init__(self, sinks: Sequence[str], *, storm: StormPolicy | None = DEFAULT_STORM,
                 ratio: RatioPolicy | None = None, routes: Sequence[Route] | None = None,
                 default: Sequence[str] | None = None) -> None:
        """``routes`` None: no routing, every alert to every sink under ``default``.
        Otherwise the routes in order, then ``default`` (None: what no route took is unrouted)."""
        self._routes = tuple(routes or ())
        if routes is None:
            default = tuple(sinks)
        self._default = (RouteMatch(DEFAULT_ROUTE, tuple(default), storm, ratio)
                         if default is not None else None)

    @classmethod
    def from_config(cls, config: RoutingConfig | None, sinks: Sequence[str]) -> Router:
        """The routing file's router; with no file, or one without routes and without
        ``default``, every alert goes to every sink in ``sinks``."""
        if config is None:
            return cls(sinks)
        if not config.routes and config.default is None:
            return cls(sinks, storm=config.storm, ratio=config.ratio)
        return cls(sinks, storm=config.storm, ratio=config.ratio, routes=config.routes,
                   default=config.default)

    @property
    def routes(self) -> tuple[Route, ...]:
        return self._routes

    @property
    def default(self) -> RouteMatch | None:
        return self._default

    def route(self, alert: Alert) -> list[RouteMatch]:
        """The routes that take ``alert``, in order (empty: unrouted)."""
        taken = []
        for route in self._routes:
            if matches(route.match, alert):
                taken.append(RouteMatch(route.name, route.sinks, route.storm, route.ratio))
                if not route.continue_:
                    break
        if not taken and self._default is not None:
            taken.append(self._default)
        return taken

    def sinks(self, alert: Alert) -> list[str]:
        """Every sink the alert's routes name, each once, in order."""
        return list(dict.fromkeys(s for match in self.route(alert) for s in match.sinks))


def matches(matcher: Matcher, alert: Alert) -> bool:
    """True when every key of ``matcher`` holds for ``alert`` (an empty matcher always holds)."""
    return all(_holds(key, values, alert) for key, values in matcher.conditions)


def _holds(key: str, values: tuple[str | int, ...], alert: Alert) -> bool:
    call, client = alert.call, alert.client
    if key == "severity":
        return alert.severity in values
    if key == "issue":
        return any(glob_matches(str(pattern), issue.key) for issue in alert.issues for pattern in values)
    if key == "error_code":
        return any(issue.error_code in values for issue in alert.issues)
    if key == "category":
        return any(getattr(issue, "category", None) in values for issue in alert.issues)
    if key == "edge":
        return any(issue.edge in values for issue in alert.issues)
    if key in ("from", "to"):
        raw = call.from_ if key == "from" else call.to
        return any(glob_matches(str(pattern), raw) for pattern in values)
    if key == "direction":
        return call.direction in values
    if key == "account_sid":
        return call.account_sid in values
    if key == "sdk_type":
        return client is not None and client.sdk_type in values
    if key == "country_code":
        return client is not None and (client.country_code or "").upper() in values
    if key == "identity":
        agent = identity(call)
        return any(glob_matches(str(pattern), agent) for pattern in values)
    return False


def explain(router: Router, alert: Alert) -> Iterator[str]:
    """Lines saying which routes took ``alert`` and why (``callwatch routes test``)."""
    for index, route in enumerate(router.routes):
        if matches(route.match, alert):
            sinks = ", ".join(route.sinks) or "(none: dropped)"
            where = "" if route.name == f"routes[{index}]" else f" (routes[{index}])"
            yield (f"route {route.name}{where} matched {route.match.describe()} "
                   f"-> {sinks}{'; continue' if route.continue_ else ''}")
            if not route.continue_:
                return
