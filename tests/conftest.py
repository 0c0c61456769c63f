"""Fixtures shared by every test: a private Redis, clean logs and contextvars, and the
loopback servers callwatch talks to (the Twilio simulator, the Slack and webhook stand-ins).

Each test that names ``simulator``, ``slack_receiver``, ``webhook_receiver``, ``pagerduty``,
``teams`` or ``smtp`` gets a fresh server on a free loopback port.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis as redis_lib
import structlog

from devtools.pagerduty_standin import PagerDutyStandIn
from devtools.redis_server import RedisServer
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.defaults import (
    DEV_ACCOUNT_SID,
    DEV_API_KEY_SECRET,
    DEV_API_KEY_SID,
    DEV_AUTH_TOKEN,
)
from devtools.simulator.server import SimulatorServer
from devtools.smtp_standin import SmtpStandIn
from devtools.standins import SlackStandIn, WebhookReceiver
from devtools.teams_standin import TeamsStandIn


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server for the session (tests that stop Redis start their own)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    """A connection to an empty database of the private Redis."""
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """Each test starts with structlog's defaults and empty contextvars."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture(autouse=True)
def _restore_rq_loggers() -> Iterator[None]:
    """A test that runs RQ's loop in this process (``work()``) leaves RQ's own handlers on
    ``rq.worker`` and ``rq.scheduler``, with propagation off, when no handler was set on the
    way to the root: later tests would no longer see RQ's lines. Each test gets them back
    as they were."""
    loggers = [logging.getLogger(name) for name in ("rq.worker", "rq.scheduler")]
    saved = [(list(lg.handlers), lg.propagate, lg.level) for lg in loggers]
    yield
    for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.propagate, logger.level = propagate, level


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A running Twilio simulator that accepts the dev account token and the dev API key:
    ``.url``, ``.account_sid``, ``.auth_token``, ``.api_key``, ``.add_call(scenario,
    call_sid=None, **options)``, ``.requests`` (the Events API request log),
    ``.set_faults(...)`` and ``.reset()``."""
    with SimulatorServer(account_sid=DEV_ACCOUNT_SID, auth_token=DEV_AUTH_TOKEN,
                         api_key=(DEV_API_KEY_SID, DEV_API_KEY_SECRET)) as server:
        yield server


@pytest.fixture
def slack_receiver() -> Iterator[SlackStandIn]:
    """A Slack incoming-webhook stand-in (Slack's one message a second per webhook);
    its ``.url`` is a SLACK_WEBHOOK_URL."""
    with SlackStandIn() as server:
        yield server


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A Standard Webhooks receiver verifying ``WEBHOOK_SECRET``; ``.url`` is an endpoint."""
    with WebhookReceiver(WEBHOOK_SECRET) as server:
        yield server


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyStandIn]:
    """A PagerDuty Events API v2 stand-in; ``.url`` is a PAGERDUTY_EVENTS_URL."""
    with PagerDutyStandIn() as server:
        yield server


@pytest.fixture
def teams() -> Iterator[TeamsStandIn]:
    """A Teams Workflows webhook stand-in; ``.url`` is a workflow URL."""
    with TeamsStandIn() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpStandIn]:
    """An SMTP server on loopback; ``.url`` is an SMTP_URL."""
    with SmtpStandIn() as server:
        yield server
