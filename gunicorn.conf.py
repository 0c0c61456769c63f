"""gunicorn settings for the web process (Procfile, Dockerfile and k8s all use this file).

Workers and threads come from WEB_CONCURRENCY and WEB_THREADS; logs (access log
included) go through structlog in the same JSON shape as the rest of callwatch.
The graceful timeout stays under Heroku's 30 s between SIGTERM and SIGKILL.
"""

import os

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

configure_logging(os.environ.get("LOG_LEVEL", "INFO").upper(), os.environ.get("LOG_FORMAT", "json"))
logconfig_dict = {"version": 1, "disable_existing_loggers": False, "root": {"level": "INFO"},
                  "loggers": {"gunicorn.error": {"propagate": True},
                              "gunicorn.access": {"propagate": True}}}
