"""gunicorn's access line as fields: ``http_request`` with method, path, status,
duration_ms, bytes and the client address, never the query string (it can carry a
customer's data).

gunicorn formats its access line from ``access_log_format`` into one free-text message;
a log search then cannot ask "which 5xx took over a second". ``FieldsLogger`` replaces
only ``Logger.access`` (gunicorn's documented hook for a custom ``logger_class``) and
logs the same facts as a record's extras, which ``service.logs`` renders as JSON keys.
"""

from __future__ import annotations

import traceback
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

ACCESS_EVENT = "http_request"


class FieldsLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with the access line as fields."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any],
               request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info(ACCESS_EVENT, extra=access_fields(resp, environ, request_time))
        except Exception:  # as gunicorn's own access(): a log line must not fail a request
            self.error(traceback.format_exc())


def access_fields(resp: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
    """The fields of one access line, from what gunicorn hands ``Logger.access``."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    try:
        status = int(status)
    except (TypeError, ValueError):
        status = None
    return {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "status": status,
        "duration_ms": round(request_time.total_seconds() * 1000, 1),
        "bytes": getattr(resp, "sent", None),
        "remote_addr": environ.get("REMOTE_ADDR"),
    }
