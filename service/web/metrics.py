"""``/metrics``: the whole deployment's counters (held in Redis) in Prometheus text format,
and this process's own ``process_*``, ``python_gc_*`` and ``python_info`` (shown even
while Redis is down).

With ``METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>`` (compared
in constant time); anything else gets a 401 JSON error and reads nothing from Redis: on a
public app (Heroku) the sink names and call volumes are nobody else's business.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from service.delivery.sinks.registry import specs_from_settings
from service.metrics import DEFAULT_ROUTE, RedisCollector
from service.settings import Settings
from service.web.problems import RequestRefused

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    context = current_app.extensions["callwatch"]
    if not _authorized(context.settings.metrics_token):
        response = RequestRefused(401, "unauthorized", "/metrics needs the header "
                                  "Authorization: Bearer <METRICS_TOKEN>.").to_response()
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = current_app.extensions.get("callwatch_registry")
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        sinks = [spec.name for spec in specs_from_settings(context.settings)]
        registry.register(RedisCollector(context.redis, context.queue_depths, sinks=sinks,
                                         routes=route_names(context.settings)))
        for local in (ProcessCollector, PlatformCollector, GCCollector):
            local(registry=registry)
        current_app.extensions["callwatch_registry"] = registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def route_names(settings: Settings) -> list[str]:
    """The routing file's route names, then ``default``: the ``route`` label's values."""
    config = settings.callwatch_config
    names = [route.name for route in config.routes] if config is not None else []
    return [*names, DEFAULT_ROUTE]


def _authorized(token: str | None) -> bool:
    """True with no token set, or when the request carries it (compared in constant time)."""
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())
