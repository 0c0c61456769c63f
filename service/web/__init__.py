"""The web edge: ``create_app`` builds the Flask app that receives Twilio's callbacks."""

from __future__ import annotations

import os
import random

import redis as redis_lib
import structlog
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from service.insights.accounts import Accounts
from service.intake import Intake
from service.metrics import BufferedMetrics, QueueDepths, route_names
from service.roster import config_fingerprint
from service.routing_file.load import Configuration
from service.routing_file.parse import RoutingConfig
from service.settings import Settings
from service.web.context import MAX_BODY_BYTES, WebContext
from service.web.error_answers import RequestRefused
from service.web.signature import AccountSignatures

__all__ = ["MAX_BODY_BYTES", "WebContext", "create_app"]

log = structlog.get_logger(__name__)


#: The web process's Redis connections at most (``BlockingConnectionPool``): a burst of
#: callbacks waits for one instead of opening one each, as a hosted Redis allows only tens
#: of clients. 2 per process is the web's share of the README's Heroku connection budget
#: (Heroku Key-Value Store mini: 20 for web, two worker dynos and a one-off). With a Redis
#: 3 ms away, 8 answered a steady 300 callbacks a second a little sooner than one shared
#: connection did (bench/README.md, "Group commit against a bounded pool"); 2 still admit
#: several hundred a second per process, and a burst waits its turn a few ms longer.
REDIS_CONNECTIONS = 2


def create_app(settings: Settings | None = None, *, routing: RoutingConfig | None = None,
               redis: redis_lib.Redis | None = None,
               queue_depths: QueueDepths | None = None) -> Flask:
    """Build the app; ``settings`` (and ``routing``) default to the environment's, ``redis``
    to ``REDIS_URL``; ``queue_depths`` (the worker edge's) adds the queues' depths to ``/metrics``."""
    if settings is None:
        loaded = Configuration.from_env(os.environ)
        settings, routing = loaded.settings, loaded.routing
    configuration = Configuration(settings, routing)
    if redis is None:
        redis = settings.redis(bounded=REDIS_CONNECTIONS, socket_connect_timeout=2,
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
    accounts = Accounts.from_settings(settings)
    if settings.twilio_validate_signatures:
        checker = AccountSignatures(accounts.tokens(), settings.public_base_url)
    else:
        log.warning("signature_validation_disabled",
                    message="TWILIO_VALIDATE_SIGNATURES=false: anyone can post callbacks")
    app.extensions["callwatch"] = WebContext(settings=settings, redis=redis, signatures=checker,
                                             metrics=BufferedMetrics(redis),
                                             intake=Intake(redis),
                                             queue_depths=queue_depths,
                                             sink_names=tuple(s.name for s in configuration.sinks),
                                             route_names=route_names(routing),
                                             account_sids=frozenset(accounts.sids),
                                             config_fingerprint=config_fingerprint(configuration))

    from service.web import callbacks, health, metrics, slack_actions

    app.register_blueprint(callbacks.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    slack_actions.register(app, settings)  # POST /slack/actions, with SLACK_SIGNING_SECRET only

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
