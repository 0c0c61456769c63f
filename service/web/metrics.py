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

from service.analysis.catalogue import CATEGORIES
from service.metrics import RedisCollector
from service.web.error_answers import RequestRefused

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
        registry.register(RedisCollector(context.redis, context.queue_depths,
                                         sinks=list(context.sink_names),
                                         routes=list(context.route_names),
                                         categories=CATEGORIES,
                                         fingerprint=context.config_fingerprint or None))
        for local in (ProcessCollector, PlatformCollector, GCCollector):
            local(registry=registry)
        current_app.extensions["callwatch_registry"] = registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _authorized(token: str | None) -> bool:
    """True with no token set, or when the request carries it (compared in constant time)."""
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())
