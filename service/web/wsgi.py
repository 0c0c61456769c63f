"""The WSGI entry point gunicorn loads: ``service.web.wsgi:app``.

The only module that builds the app at import time. A bad environment variable
prints one line naming it and stops the process.
"""

from __future__ import annotations

import os
import sys

from service.errors import ConfigError
from service.logs import configure_logging
from service.settings import Settings
from service.web import create_app

try:
    settings = Settings.from_env(os.environ)
except ConfigError as error:
    print(f"callwatch: configuration error: {error}", file=sys.stderr)
    raise SystemExit(2) from None

configure_logging(settings.log_level, settings.log_format)
app = create_app(settings)
