"""The web process's WSGI entry point, which gunicorn loads: ``workers.wsgi:app``.

The composition root of the web process: the app from ``service.web`` with the queue
depths ``/metrics`` shows, which only the RQ edge can read (``workers.queue_depths``), so
it lives here and ``service`` imports nothing of RQ or ``workers``. The only module that
builds the app at import time. A bad environment variable
prints one line naming it and stops the process (under gunicorn, ``gunicorn.conf.py``
has already stopped the master for it: a worker's exit alone would be restarted).
"""

from __future__ import annotations

import gc
import os

from service.logs import configure_logging
from service.routing_file.load import configuration_or_exit
from service.web import create_app
from workers.queue_depths import RQQueueDepths

configuration = configuration_or_exit(os.environ)
settings = configuration.settings

configure_logging(settings.log_level, settings.log_format)
app = create_app(settings, routing=configuration.routing, queue_depths=RQQueueDepths())
# What start-up built (modules, the app, its clients) lives as long as the process: out
# of the collector's reach, a full collection no longer walks it (each took about 45 ms
# of CPU and of every request waiting meanwhile; see bench/README.md).
gc.freeze()
