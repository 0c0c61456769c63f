"""Logging for both process types: structlog configured once, JSON to stdout.

``configure_logging`` is called once per process (the WSGI module, gunicorn's
config, the worker's start-up, the CLI). Standard-library loggers (gunicorn, rq,
werkzeug) are routed through the same formatter so every line has one shape.
Guards run last, on every line: a failed job's arguments (RQ's extras) are dropped,
values under secret-looking keys are replaced, and phone numbers anywhere in a value
(tracebacks included) are masked.
"""

from __future__ import annotations

import logging
import re
import sys
from functools import lru_cache
from typing import Any

import structlog

from service.calls import mask_number

_SECRET_KEY = re.compile(r"(token|secret|password|authorization|signature|api_key|webhook_url)",
                         re.IGNORECASE)
# E.164 numbers (+ and 7 to 15 digits) standing alone, also %-escaped as in a GET query
# string: not the hex inside a CallSid.
_PHONE = re.compile(r"(?<![\w+%])(?:\+|%2[bB])\d{7,15}(?!\w)")
# RQ adds a failed job's arguments (a whole call or alert, numbers included) as extras.
_DROPPED_EXTRAS = ("arguments", "kwargs")


@lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    """Cached: a process logs the same few dozen keys over and over."""
    return _SECRET_KEY.search(key) is not None


def _redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if _is_secret_key(key):
            event_dict[key] = "[redacted]"
    return event_dict


def _mask_phones(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if key != "timestamp":
            event_dict[key] = _masked(value)
    return event_dict


def _masked(value: Any) -> Any:
    """``value`` with every phone number masked, looking inside lists and dicts."""
    if isinstance(value, str):
        if "+" not in value and "%2" not in value:  # no number can start here: skip the regex
            return value
        return _PHONE.sub(_mask_match, value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def _mask_match(match: re.Match[str]) -> str:
    number = match.group(0)
    digits = number[3:] if number.startswith("%") else number[1:]  # after "+" or "%2B"
    return mask_number("+" + digits) or ""


#: The query string in gunicorn's warning about a request it refused ("Invalid request
#: from ip=…: Invalid HTTP request line: 'GET /x?…'"): masked to the closing quote or the
#: end, since a query can carry a customer's data and a malformed line can hold anything.
_QUERY = re.compile(r"\?[^']*")
_REFUSED_REQUEST = "Invalid request from "


def _mask_refused_queries(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event = event_dict.get("event")
    if (isinstance(event, str) and event.startswith(_REFUSED_REQUEST)
            and str(event_dict.get("logger", "")).startswith("gunicorn")):
        event_dict["event"] = _QUERY.sub("?[masked]", event)
    return event_dict


#: C0 and C1 control characters (ANSI escapes start with ESC), shown as ``\x1b``.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
#: Line breaks and tabs kept in a formatted traceback, which is printed over several lines.
_MULTILINE = {key: value for key, value in _CONTROLS.items() if chr(key) not in "\n\t"}


def _escape_controls(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """For ``LOG_FORMAT=console``: a caller-controlled value cannot move the cursor, change
    colours or forge a line on a terminal. Other values are rendered with ``repr``, which
    escapes them already; JSON escapes them itself."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = value.translate(_MULTILINE if key in ("exception", "stack")
                                              else _CONTROLS)
    return event_dict


#: Where RQ starts the traceback it writes into a message's text (a failed job, the
#: scheduler's crash) instead of passing ``exc_info``.
_TRACEBACK = "\nTraceback (most recent call last):"


def _split_library_tracebacks(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A standard-library line whose text holds a traceback (RQ formats them into the
    message) keeps its first line as ``event`` and the traceback as ``exception``, as our own
    ``log.exception`` lines have it; any other line break goes to ``detail``. So each such
    line is still one JSON object a log search can filter on by its event."""
    event = event_dict.get("event")
    if not isinstance(event, str) or "\n" not in event or "exception" in event_dict:
        return event_dict
    head, found, trace = event.partition(_TRACEBACK)
    if found:
        event_dict["exception"] = found.lstrip("\n") + trace
    first, _, rest = head.partition("\n")
    event_dict["event"] = first.rstrip()
    if rest.strip():
        event_dict["detail"] = rest.strip()
    return event_dict


def library_processors() -> list[Any]:
    """Processors for standard-library records only (gunicorn's, RQ's), after their extras."""
    return [_split_library_tracebacks]


def _drop_job_arguments(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in _DROPPED_EXTRAS:
        event_dict.pop(key, None)
    return event_dict


def shared_processors() -> list[Any]:
    """Processors applied to structlog and standard-library records alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def guards() -> list[Any]:
    """The last processors before rendering, so they see everything: extras added from
    standard-library records and formatted tracebacks included."""
    return [_drop_job_arguments, _redact_secrets, _mask_phones, _mask_refused_queries]


#: The handler every line goes to; set by ``configure_logging``.
_handler: logging.StreamHandler[Any] = logging.StreamHandler(sys.stdout)


class _LineWriter:
    """The logger under callwatch's own (structlog) events: each rendered line goes to the
    standard-library handler's stream under that handler's lock, so both kinds of line share
    one stream, one order and one redirection (the CLI's stderr), without a ``LogRecord``
    and a formatter per line of our own. The handler is looked up per line, so a logger
    cached before ``configure_logging`` ran again follows the new one. A line that cannot
    be written is reported as ``logging`` reports it (on stderr), never raised."""

    def __init__(self, name: str) -> None:
        self.name = name  # read by ``add_logger_name``

    def msg(self, line: str) -> None:
        handler = _handler
        handler.acquire()
        try:
            handler.stream.write(line + "\n")
            handler.stream.flush()
        except Exception:  # as StreamHandler.emit: report, do not raise
            handler.handleError(logging.makeLogRecord({"msg": line}))
        finally:
            handler.release()

    debug = info = warning = error = critical = exception = log = msg


def _line_writer(name: str = "callwatch", *_: Any) -> _LineWriter:
    return _LineWriter(name)


def configure_logging(level: str = "INFO", fmt: str = "json", *, cache: bool = True,
                      stream: Any = None) -> None:
    """Set up structlog and the root logger, writing to ``stream`` (stdout by default);
    safe to call more than once.

    ``cache`` keeps each module's logger as first configured (faster; long-running
    processes): its level stays the one it first saw (its stream follows any later
    call). A one-shot command passes False, so code it shares with the worker keeps
    following whatever configuration comes later (tests run both in one process).
    callwatch's own events are rendered by structlog alone and filtered by level before
    any work; standard-library records (gunicorn, rq) go through ``logging`` and the
    same processors, so every line has one shape.
    """
    renderer: Any
    last: list[Any] = []
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        last = [_escape_controls]
    else:
        renderer = structlog.processors.JSONRenderer()
    global _handler
    handler = logging.StreamHandler(stream or sys.stdout)
    _handler = handler
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            *shared_processors(),
            structlog.processors.format_exc_info,
            *guards(), *last, renderer,
        ],
        logger_factory=_line_writer,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=cache,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared_processors(), structlog.stdlib.ExtraAdder(),
                           *library_processors()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, *guards(), *last, renderer],
    )
    # No rendered line shows a record's thread or process: don't look them up per record.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # RQ's own handlers (``rq.logutils.setup_loghandlers``, plain text, propagation off) go:
    # every ``rq.*`` logger RQ has made so far, and the parent of those it makes later.
    rq_loggers = [name for name in logging.root.manager.loggerDict if name.startswith("rq.")]
    for name in ("gunicorn.error", "gunicorn.access", "rq", "rq.worker", "rq.scheduler",
                 "werkzeug", *rq_loggers):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # urllib3 logs full URLs (a Slack webhook URL is a secret) at DEBUG.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLevelName(level)))
