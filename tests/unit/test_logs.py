"""What reaches the log: one JSON shape, no secrets, no full phone numbers."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from service.logs import configure_logging


@pytest.fixture
def json_log(capsys: pytest.CaptureFixture[str]):
    """Configures JSON logging on first use (inside the test, where capsys captures)."""

    def lines() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]

    yield lines
    logging.getLogger().handlers.clear()


def test_structlog_and_stdlib_share_json_shape(json_log) -> None:
    """structlog events and stdlib records (gunicorn, rq) both come out as JSON lines."""
    configure_logging("INFO", "json")
    structlog.contextvars.bind_contextvars(request_id="r1", call_sid="CA" + "0" * 32)
    structlog.get_logger().info("analysis_started", edges=2)
    logging.getLogger("rq.worker").info("Job %s: started", "abc")
    first, second = json_log()
    assert first["event"] == "analysis_started" and first["request_id"] == "r1"
    assert first["call_sid"] == "CA" + "0" * 32 and first["level"] == "info"
    assert second["event"] == "Job abc: started" and second["logger"] == "rq.worker"
    assert "timestamp" in first and "timestamp" in second


def test_secret_keys_are_redacted(json_log) -> None:
    """Values under secret-looking keys never reach the log."""
    configure_logging("INFO", "json")
    structlog.get_logger().info("oops", auth_token="t0k3n", webhook_secret="whsec_x",
                                slack_webhook_url="https://hooks.slack.com/services/T/B/X")
    [line] = json_log()
    assert "t0k3n" not in json.dumps(line) and "whsec_x" not in json.dumps(line)
    assert "hooks.slack.com" not in json.dumps(line)


def test_phone_numbers_are_masked_but_sids_kept(json_log) -> None:
    """An E.164 number anywhere in a value is masked; CallSids and client names are kept."""
    configure_logging("INFO", "json")
    sid = "CA" + "1234567890" * 3 + "ab"
    structlog.get_logger().info("callback", to="+14155550123", note="dialled +442071234567 ok",
                                call_sid=sid, frm="client:alice")
    logging.getLogger("gunicorn.error").info("from +14155550123")
    first, second = json_log()
    text = json.dumps([first, second])
    assert "+14155550123" not in text and "+442071234567" not in text
    assert first["to"].endswith("23") and first["call_sid"] == sid
    assert first["frm"] == "client:alice"


def test_escaped_numbers_and_tracebacks_are_masked(json_log) -> None:
    """A number %-escaped in a query string, and one inside a traceback's text, are masked."""
    configure_logging("INFO", "json")
    logging.getLogger("gunicorn.error").info("Error handling request /cb?From=%2B22071234567&x=1")
    try:
        raise ValueError("bad number +14155550123")
    except ValueError:
        structlog.get_logger().exception("job_crashed")
        logging.getLogger("rq.worker").exception("job crashed")
    lines = json_log()
    text = json.dumps(lines)
    assert "22071234567" not in text and "14155550123" not in text
    assert lines[0]["event"].endswith("67&x=1")  # masked, the rest of the line kept
    assert all("ValueError" in line["exception"] for line in lines[1:])


def test_a_failed_jobs_arguments_never_reach_the_log(json_log) -> None:
    """RQ logs a failed job with its arguments as extras; they are dropped, and any number in
    other extras is masked however deeply it sits."""
    configure_logging("INFO", "json")
    envelope = {"data": {"call": {"to": "+14155550123", "from": "client:alice"}}}
    logging.getLogger("rq.worker").error("Job failed", extra={
        "arguments": ["slack", envelope], "kwargs": {"envelope": envelope},
        "nested": {"numbers": ["+14155550123"]}})
    [line] = json_log()
    assert "arguments" not in line and "kwargs" not in line
    assert "14155550123" not in json.dumps(line)
    assert line["nested"]["numbers"][0].endswith("23")


class _BrokenStream:
    """A stdout that is gone (a closed pipe): every write fails."""

    def write(self, _: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_line_that_cannot_be_written_is_reported_not_raised(
        capsys: pytest.CaptureFixture[str]) -> None:
    """stdout gone: the request or job that logs carries on (an admitted call must not turn
    into a 500 over its log line); logging reports the failure on stderr, as for its own."""
    configure_logging("INFO", "json", stream=_BrokenStream())
    try:
        structlog.get_logger("service.web.callbacks").info("analysis_scheduled", delay_s=90)
        logging.getLogger("gunicorn.access").info("POST /twilio/status-callback 204")
    finally:
        logging.getLogger().handlers.clear()
    assert capsys.readouterr().err.count("--- Logging error ---") == 2
