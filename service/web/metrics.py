"""``/metrics``: the whole deployment's counters (held in Redis) in Prometheus text format,
and this process's own ``process_*``, ``python_gc_*`` and ``python_info`` (shown even
while Redis is down)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from service.metrics import RedisCollector

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    registry = current_app.extensions.get("callwatch_registry")
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        context = current_app.extensions["callwatch"]
        registry.register(RedisCollector(context.redis, context.queue_depths, sinks=list(context.sink_names)))
        for local in (ProcessCollector, PlatformCollector, GCCollector):
            local(registry=registry)
        current_app.extensions["callwatch_registry"] = registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
