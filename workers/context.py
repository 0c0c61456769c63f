"""What jobs need in a worker process, built once from the environment.

The worker's start-up (or a test) calls ``configure`` with settings and a Redis
connection; jobs call ``current()``. Nothing is built at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis as redis_lib
import requests

from service.delivery.routing import Router
from service.delivery.silences import Silences
from service.delivery.sinks import Sinks
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


#: Variables through which requests reads proxies and .netrc from the environment on
#: every request (``Session.merge_environment_settings``, ``get_netrc_auth``).
_REQUESTS_PER_REQUEST = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NETRC")
#: The CA bundle variables requests reads on every request, in its order of preference.
_CA_BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def http_session(environ: Mapping[str, str]) -> requests.Session:
    """The process's one HTTP session. When the environment sets no proxy and no .netrc,
    requests does not read the environment again per request (about a tenth of each
    request's CPU in a worker, ``bench/e2e.py``); a CA bundle it names
    (``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``) becomes the session's, which is what
    requests would have verified with on each request."""
    session = requests.Session()
    names = {name.lower() for name in environ}
    if names & {name.lower() for name in _REQUESTS_PER_REQUEST}:
        return session
    session.trust_env = False
    bundle = next((environ[name] for name in _CA_BUNDLES if environ.get(name)), None)
    if bundle:
        session.verify = bundle
    return session


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
