"""What jobs need in a worker process, built once from the environment.

The worker's start-up (or a test) calls ``configure`` with settings and a Redis
connection; jobs call ``current()``. Nothing is built at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis as redis_lib
import requests

from service.delivery.routing import Router
from service.delivery.silences import Silences
from service.delivery.sinks import Sinks
from service.http_session import http_session
from service.insights.accounts import Accounts
from service.routing_file.load import Configuration
from service.routing_file.parse import RoutingConfig
from service.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WorkerContext:
    """Collaborators shared by the jobs of one worker process."""

    settings: Settings
    redis: redis_lib.Redis
    #: The routing file, parsed at start-up (``service.routing_file.load``); None: none.
    routing: RoutingConfig | None = None
    session: requests.Session = field(default_factory=lambda: http_session(os.environ))
    clock: Callable[[], datetime] = utc_now
    #: The configured sinks, built once per process.
    sinks: Sinks = field(init=False)
    router: Router = field(init=False)
    silences: Silences = field(init=False)
    #: Every watched account's credentials (TWILIO_ACCOUNTS; issue 20, legs).
    accounts: Accounts = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = Accounts.from_settings(self.settings)
        file_sinks = self.routing.sinks if self.routing else ()
        self.sinks = Sinks.from_settings(self.settings, file_sinks, session=self.session, clock=self.clock,
                                         redis=self.redis)
        self.router = Router.from_config(self.routing, self.sinks.names)
        self.silences = Silences(self.redis, clock=self.clock)


_context: WorkerContext | None = None


def configure(settings: Settings, redis: redis_lib.Redis, *, routing: RoutingConfig | None = None,
              clock: Callable[[], datetime] = utc_now) -> WorkerContext:
    """Set the context jobs of this process use (worker start-up, tests)."""
    global _context
    _context = WorkerContext(settings=settings, redis=redis, routing=routing, clock=clock)
    return _context


def current() -> WorkerContext:
    """The context set by ``configure``, or one built from the environment."""
    global _context
    if _context is None:
        configuration = Configuration.from_env(os.environ)
        _context = WorkerContext(settings=configuration.settings, redis=configuration.settings.redis(),
                                 routing=configuration.routing)
    return _context
