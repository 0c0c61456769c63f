"""gunicorn settings for the web process (Procfile, Dockerfile and k8s all use this file).

The web process serves connections with gevent (``WEB_WORKER_CLASS``, default
``gevent``): a client that trickles its headers, or opens a connection and sends
nothing, costs a greenlet rather than one of a few threads, and the head of every
request must arrive within ``keepalive`` seconds or the connection is closed. So
slow or idle clients cannot keep ``/healthz`` and Twilio's callbacks waiting.
``WEB_CONCURRENCY`` processes each hold up to ``WEB_CONNECTIONS`` connections;
``WEB_THREADS`` applies only to ``WEB_WORKER_CLASS=gthread`` (for a proxy that
buffers whole requests). ``HOST`` is the address to bind (``0.0.0.0`` by default,
as containers and Heroku need; ``127.0.0.1`` on a laptop).

Every variable is checked here, in the master, before any worker starts: a bad one
prints one line naming it and exits with code 2. Logs (access log included) go
through structlog in the same JSON shape as the rest of callwatch. The graceful
timeout stays under Heroku's 30 s between SIGTERM and SIGKILL.
"""

import os
import sys
from typing import Any

WORKER_CLASSES = {"gevent": "service.web.gunicorn_workers.GeventWorker",
                  "gthread": "service.web.gunicorn_workers.ThreadWorker"}

# Only gthread goes unpatched; Settings' parser checks the value itself below (a bad one
# stops the master, so patching for it costs nothing).
if os.environ.get("WEB_WORKER_CLASS", "").strip().lower() != "gthread":
    # Patched before anything imports ssl, socket or threading (redis and requests do,
    # below): modules that took a name from them first would keep the blocking one.
    from gevent import monkey

    monkey.patch_all()

from service.errors import ConfigError  # noqa: E402
from service.logs import configure_logging  # noqa: E402
from service.routing_file.load import configuration_or_exit  # noqa: E402
from service.settings import WebServer  # noqa: E402
from service.web.access_log import FieldsLogger as Logger  # noqa: E402 - access line as fields

# Checked here, in the master: a worker that exits on a bad variable is only restarted,
# forever, while the port stays bound and callbacks hang.
try:
    _WEB = WebServer.from_env(os.environ)
except ConfigError as _error:
    print(f"callwatch: configuration error: {_error}", file=sys.stderr)
    raise SystemExit(2) from None
_settings = configuration_or_exit(os.environ).settings

bind = f"{_WEB.host}:{_settings.port}"
workers = _WEB.workers
threads = _WEB.threads
worker_class = WORKER_CLASSES[_WEB.worker_class]
worker_connections = _WEB.worker_connections
# With gevent, also the deadline of each request, its body included (a body that drips in
# is cut off): see service.web.gunicorn_workers.
timeout = 30
graceful_timeout = 25
# Idle keep-alive connections close after this; with gevent it also bounds how long the
# head of each request may take to arrive (gunicorn's gevent worker times the parse).
keepalive = 5
# The access line is fields, the path without its query string (a query can carry a
# customer's data): logger_class below, service.web.access_log; no access_log_format.
accesslog = "-"
errorlog = "-"
# Twilio's callbacks are small; refuse giant header sections early.
limit_request_field_size = 8190
# gunicorn 27's control socket (in $HOME) is not used, and $HOME is read-only in k8s.
control_socket_disable = True

_LOG_LEVEL = _settings.log_level
_LOG_FORMAT = _settings.log_format


class _CallwatchLogger(Logger):
    """gunicorn's logger, whose lines (the master's too) go through callwatch's formatter:
    gunicorn sets up its own handlers first, then ``configure_logging`` routes them to ours."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure_logging(_LOG_LEVEL, _LOG_FORMAT)


logger_class = _CallwatchLogger
