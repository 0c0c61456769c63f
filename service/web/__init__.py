"""The web edge: ``create_app`` builds the Flask app that receives Twilio's callbacks."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass

import redis as redis_lib
import structlog
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from service.intake import Intake
from service.metrics import BufferedMetrics, Metrics, QueueDepths
from service.settings import Settings
from service.web.problems import RequestRefused
from service.web.signature import SignatureChecker

MAX_BODY_BYTES = 64 * 1024
#: Redis connections one web process may hold (admissions are batched, metrics flushed every
#: few seconds): the README's Heroku connection budget.
WEB_REDIS_CONNECTIONS = 2

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WebContext:
    """What the routes need, kept in ``app.extensions["callwatch"]``."""

    settings: Settings
    redis: redis_lib.Redis
    signatures: SignatureChecker | None
    metrics: Metrics
    intake: Intake
    #: The job queue's depths for ``/metrics`` (the worker edge's); none: not shown.
    queue_depths: QueueDepths | None = None


def _cooperative_yield() -> Callable[[], object] | None:
    """A turn (``service.web.turns``) when this process is gevent-patched (the web
    process's default worker), for admissions to gather the requests under way; else
    None (threads)."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        return None
    from service.web.turns import take_turn

    return take_turn


def create_app(settings: Settings | None = None, *, redis: redis_lib.Redis | None = None,
               queue_depths: QueueDepths | None = None) -> Flask:
    """Build the app; ``settings`` default to the environment, ``redis`` to ``REDIS_URL``;
    ``queue_depths`` (the worker edge's) adds the queues' depths to ``/metrics``."""
    settings = settings or Settings.from_env(os.environ)
    if redis is None:
        redis = settings.redis(bounded=WEB_REDIS_CONNECTIONS, socket_connect_timeout=2,
                               socket_timeout=2, health_check_interval=30)
    app = Flask(__name__)
    # one byte over the limit, so a chunked body's read length tells "over" from "at" it
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES + 1
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_BODY_BYTES
    if settings.trusted_proxy_hops and not settings.public_base_url:
        hops = settings.trusted_proxy_hops
        # X-Forwarded-Host is never trusted: Heroku's router passes a client's own through,
        # which would let a callback signed for another URL (a staging app on the same
        # account) be replayed here. The Host header is what Twilio connected to.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0,  # type: ignore[method-assign]
                                x_port=hops, x_prefix=0)
    checker = None
    if settings.twilio_validate_signatures:
        checker = SignatureChecker(settings.auth_tokens, settings.public_base_url)
    else:
        log.warning("signature_validation_disabled",
                    message="TWILIO_VALIDATE_SIGNATURES=false: anyone can post callbacks")
    app.extensions["callwatch"] = WebContext(settings=settings, redis=redis, signatures=checker,
                                             metrics=BufferedMetrics(redis),
                                             intake=Intake(redis, batched=True,
                                                           gather=_cooperative_yield()),
                                             queue_depths=queue_depths)

    from service.web import callbacks, health, metrics

    app.register_blueprint(callbacks.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)

    @app.before_request
    def _bind_request() -> None:
        structlog.contextvars.clear_contextvars()
        # Twilio sends an idempotency token; otherwise any unique-enough id will do
        # (uuid4 would cost a system call per request).
        request_id = (request.headers.get("I-Twilio-Idempotency-Token")
                      or f"{random.getrandbits(128):032x}")
        structlog.contextvars.bind_contextvars(request_id=request_id)

    @app.errorhandler(RequestRefused)
    def _refused(error: RequestRefused) -> Response:
        log.info("request_refused", error=error.error, field=error.field, status=error.status)
        if request.blueprint == "callbacks":
            app.extensions["callwatch"].metrics.inc("callwatch_callbacks", outcome="refused",
                                                    reason=error.error)
        return error.to_response()

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 413:
            return _refused(RequestRefused(413, "payload_too_large",
                                           f"The body is over {MAX_BODY_BYTES // 1024} KiB."))
        response = RequestRefused(status, "http_error", error.description or "").to_response()
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value  # e.g. Allow on 405
        return response

    return app
