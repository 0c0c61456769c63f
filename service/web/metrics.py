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

from service.delivery.sinks.registry import specs_from_settings
from service.metrics import RedisCollector
from service.roster import config_fingerprint

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    registry = current_app.extensions.get("callwatch_registry")
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        context = current_app.extensions["callwatch"]
        sinks = [spec.name for spec in specs_from_settings(context.settings)]
        registry.register(RedisCollector(context.redis, context.queue_depths, sinks=sinks,
                                         fingerprint=config_fingerprint(context.settings)))
        for local in (ProcessCollector, PlatformCollector, GCCollector):
            local(registry=registry)
        current_app.extensions["callwatch_registry"] = registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
