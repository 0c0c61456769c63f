"""Liveness and readiness: ``/healthz`` touches nothing, ``/readyz`` pings Redis."""

from __future__ import annotations

import redis as redis_lib
from flask import Blueprint, Response, current_app, jsonify

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int] | Response:
    context = current_app.extensions["callwatch"]
    try:
        context.redis.ping()
    except redis_lib.RedisError:
        response = jsonify({"status": "unavailable", "message": "Redis does not answer PING"})
        response.headers["Retry-After"] = "5"
        return response, 503
    return jsonify({"status": "ready"})
