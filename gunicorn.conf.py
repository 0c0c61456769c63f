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

import ipaddress
import os
import sys
from collections.abc import Mapping
from typing import Any

from service.errors import ConfigError

WORKER_CLASSES = {"gevent": "service.web.gunicorn_workers.GeventWorker",
                  "gthread": "service.web.gunicorn_workers.ThreadWorker"}


def _count(environ: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, not {raw!r}") from None
    if not 1 <= value <= maximum:
        raise ConfigError(name, f"must be from 1 to {maximum}, not {value}")
    return value


def _host(environ: Mapping[str, str]) -> str:
    """``HOST`` as gunicorn binds it: an IP address (IPv6 in brackets) or a host name."""
    raw = environ.get("HOST", "").strip() or "0.0.0.0"  # noqa: S104 - containers need it
    try:
        address = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        if not raw.replace("-", "").replace(".", "").isalnum():
            raise ConfigError("HOST", f"must be an IP address or a host name, not {raw!r}") from None
        return raw
    return f"[{address}]" if address.version == 6 else str(address)


def _web(environ: Mapping[str, str]) -> dict[str, Any]:
    kind = environ.get("WEB_WORKER_CLASS", "").strip().lower() or "gevent"
    if kind not in WORKER_CLASSES:
        raise ConfigError("WEB_WORKER_CLASS", f"must be one of {', '.join(WORKER_CLASSES)}, "
                                              f"not {kind!r}")
    return {"host": _host(environ), "worker_class": WORKER_CLASSES[kind],
            "workers": _count(environ, "WEB_CONCURRENCY", 2, 64),
            "threads": _count(environ, "WEB_THREADS", 4, 256),
            "worker_connections": _count(environ, "WEB_CONNECTIONS", 1000, 100_000)}


# Checked here, in the master: a worker that exits on a bad variable is only restarted,
# forever, while the port stays bound and callbacks hang.
try:
    _WEB = _web(os.environ)
except ConfigError as _error:
    print(f"callwatch: configuration error: {_error}", file=sys.stderr)
    raise SystemExit(2) from None

if _WEB["worker_class"] == WORKER_CLASSES["gevent"]:
    # Patched before anything imports ssl, socket or threading (redis and requests do,
    # below): modules that took a name from them first would keep the blocking one.
    from gevent import monkey

    monkey.patch_all()

from service.logs import configure_logging  # noqa: E402
from service.settings import settings_or_exit  # noqa: E402
from service.web.access_log import FieldsLogger as Logger  # noqa: E402 - access line as fields

_settings = settings_or_exit(os.environ)

bind = f"{_WEB['host']}:{_settings.port}"
workers = _WEB["workers"]
threads = _WEB["threads"]
worker_class = _WEB["worker_class"]
worker_connections = _WEB["worker_connections"]
# With gevent, also the deadline of each request, its body included (a body that drips in
# is cut off): see service.web.gunicorn_workers.
timeout = 30
graceful_timeout = 25
# Idle keep-alive connections close after this; with gevent it also bounds how long the
# head of each request may take to arrive (gunicorn's gevent worker times the parse).
keepalive = 5
accesslog = "-"
errorlog = "-"
# The access line names the path only: query strings can carry a customer's data.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
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
