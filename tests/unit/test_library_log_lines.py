"""Libraries' lines in callwatch's JSON shape: RQ's tracebacks as an ``exception`` field,
gunicorn's access line as fields without the query string."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest

from service.logs import configure_logging
from service.web.access_log import access_fields


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]):
    """Configures JSON logging on first use (inside the test, where capsys captures)."""

    def lines() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]

    yield lines
    logging.getLogger().handlers.clear()


def test_a_traceback_in_an_rq_message_becomes_the_exception_field(json_lines) -> None:
    """RQ's "raised an exception.\\n<traceback>" is one line: event, then exception."""
    configure_logging("INFO", "json")
    trace = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in run\n"
             "redis.exceptions.ConnectionError: Connection refused.\n")
    logging.getLogger("rq.scheduler").error("Scheduler [PID %s] raised an exception.\n%s",
                                            42, trace)
    [line] = json_lines()
    assert line["event"] == "Scheduler [PID 42] raised an exception."
    assert line["exception"] == trace
    assert line["logger"] == "rq.scheduler" and line["level"] == "error"


def test_other_line_breaks_go_to_detail(json_lines) -> None:
    """A multi-line message without a traceback keeps its first line as the event."""
    configure_logging("INFO", "json")
    logging.getLogger("rq.worker").warning("first line\nsecond\nthird")
    [line] = json_lines()
    assert line["event"] == "first line" and line["detail"] == "second\nthird"


def test_rq_loggers_rq_set_up_itself_are_routed_too(json_lines) -> None:
    """A logger RQ gave its own plain handler (propagation off, as ``setup_loghandlers``
    does when nothing else handles it) is routed through ours at start-up."""
    rq_logger = logging.getLogger("rq.cron")
    plain = logging.StreamHandler()
    rq_logger.addHandler(plain)
    rq_logger.propagate = False
    configure_logging("INFO", "json")
    assert plain not in rq_logger.handlers and rq_logger.propagate
    rq_logger.info("Enqueued job %s", "tick")
    [line] = json_lines()
    assert line["event"] == "Enqueued job tick" and line["logger"] == "rq.cron"


def test_access_fields_name_method_path_status_and_duration_not_the_query() -> None:
    """The access line's fields come from the WSGI environ; the query string is not one."""
    response = SimpleNamespace(status="503 SERVICE UNAVAILABLE", sent=87)
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/twilio/status-callback",
               "QUERY_STRING": "From=%2B14155550123", "REMOTE_ADDR": "10.0.0.1"}
    fields = access_fields(response, environ, timedelta(milliseconds=12, microseconds=340))
    assert fields == {"method": "POST", "path": "/twilio/status-callback", "status": 503,
                      "duration_ms": 12.3, "bytes": 87, "remote_addr": "10.0.0.1"}
