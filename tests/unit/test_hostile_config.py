"""Hostile or careless values in settings and logs: named errors, masked queries, escaped
control characters."""

from __future__ import annotations

import logging

import pytest
import structlog

from service.errors import ConfigError
from service.logs import configure_logging
from service.settings import Settings

BASE = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "tok"}


@pytest.fixture
def console(capsys: pytest.CaptureFixture[str]):
    """Call once to configure console logging (not a terminal: no colours) inside the test,
    where capsys captures; call again for what was printed."""
    calls: list[None] = []

    def use() -> str:
        if not calls:
            calls.append(None)
            configure_logging("INFO", "console")
            return ""
        return capsys.readouterr().out

    yield use
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize(("url", "says"), [
    ("redis://localhost:abc/0", "port"),
    ("redis://localhost:99999/0", "port"),
    ("redis://localhost:6379/zero", "database"),
    ("rediss://user:pass@host:6380/0x1", "database"),
    ("unix:///tmp/redis.sock?db=one", "database"),
])
def test_malformed_redis_url_is_named(url: str, says: str) -> None:
    """A REDIS_URL whose port or database is not a number stops start-up naming REDIS_URL
    (instead of a traceback later in web and worker)."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "REDIS_URL": url})
    assert caught.value.variable == "REDIS_URL" and says in caught.value.message
    assert "pass" not in str(caught.value)


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "redis://h", "redis://h:6379/",
                                 "rediss://u:p@h:25061/2", "unix:///tmp/redis.sock?db=3"])
def test_well_formed_redis_urls_pass(url: str) -> None:
    """Ordinary REDIS_URL forms (managed Redis ports, unix sockets with ?db=) are accepted."""
    assert Settings.from_env({**BASE, "REDIS_URL": url}).redis_url == url


def test_console_escapes_control_characters_from_callers(console) -> None:
    """LOG_FORMAT=console prints a caller-controlled ANSI escape or line break escaped, so a
    value cannot recolour the terminal, move the cursor or forge a line."""
    console()
    structlog.get_logger().warning("callback_refused", field="\x1b[2J\x1b[31mFAKE\nlevel=error",
                                   event_extra="\x9b31m")
    logging.getLogger("gunicorn.error").warning("Invalid header %s", "\x1b]0;title\x07")
    out = console()
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and "\\x0a" in out
    assert len(out.strip().splitlines()) == 2


def test_console_keeps_tracebacks_readable(console) -> None:
    """A formatted traceback keeps its line breaks in console output."""
    console()
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger().exception("job_crashed")
    out = console()
    assert "Traceback" in out and "\nValueError: boom" in out


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_gunicorn_lines_never_show_a_query(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    """gunicorn's own warnings about a malformed request mask its query string."""
    configure_logging("INFO", fmt)
    try:
        logging.getLogger("gunicorn.error").warning(
            "Invalid request from ip=%s: %s", "10.0.0.1",
            "Invalid HTTP request line: 'GET /twilio/status-callback?From=%2B14155550123&note="
            "secret value HTTP/1.1'")
        logging.getLogger("gunicorn.error").warning(
            "Invalid request from ip=%s: %s", "10.0.0.1", "Invalid HTTP Version: 'HTP/1.1'")
        out = capsys.readouterr().out
    finally:
        logging.getLogger().handlers.clear()
    assert "secret" not in out and "4155550" not in out
    assert "status-callback?[masked]" in out and "HTP/1.1" in out
