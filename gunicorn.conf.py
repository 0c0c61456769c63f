"""gunicorn settings for the web process (Procfile, Dockerfile and k8s all use this file).

Workers and threads come from WEB_CONCURRENCY and WEB_THREADS; logs (access log
included) go through structlog in the same JSON shape as the rest of callwatch.
The graceful timeout stays under Heroku's 30 s between SIGTERM and SIGKILL.
"""

import os
from typing import Any

from gunicorn.glogging import Logger

from service.logs import configure_logging
from service.settings import settings_or_exit

# Checked here, in the master: a worker that exits on a bad variable is only restarted,
# forever, while the port stays bound and callbacks hang.
settings_or_exit(os.environ)

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30
graceful_timeout = 25
keepalive = 5
accesslog = "-"
errorlog = "-"
# The access line names the path only: query strings can carry a customer's data.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# Twilio's callbacks are small; refuse giant header sections early.
limit_request_field_size = 8190
# gunicorn 27's control socket (in $HOME) is not used, and $HOME is read-only in k8s.
control_socket_disable = True

_LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
_LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")


class _CallwatchLogger(Logger):
    """gunicorn's logger, whose lines (the master's too) go through callwatch's formatter:
    gunicorn sets up its own handlers first, then ``configure_logging`` routes them to ours."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure_logging(_LOG_LEVEL, _LOG_FORMAT)


logger_class = _CallwatchLogger
