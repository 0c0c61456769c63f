"""The jobs RQ runs. Thin: rebuild input from JSON, build collaborators, call the domain."""

from __future__ import annotations

from typing import Any

import structlog

from service.calls import Call
from workers.context import current

log = structlog.get_logger()


def analyze_call(call_json: dict[str, Any], recheck: int = 0, attempt: int = 0) -> str:
    """Analyse one call: fetch its events, classify them, hand any alert to the sinks."""
    context = current()
    call = Call.from_json(call_json)
    structlog.contextvars.bind_contextvars(call_sid=call.call_sid)
    log.info("analysis_started", recheck=recheck, attempt=attempt, **call.log_fields())
    del context
    return "started"
