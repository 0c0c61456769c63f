"""Settings: every environment variable callwatch reads, parsed once at start-up.

``Settings.from_env(os.environ)`` is called at the edges (WSGI module, worker
start-up, CLI) and nowhere else, through ``service.routing_file.load``, which adds the
routing file: ``Settings`` holds environment values only. A missing or malformed variable raises
``ConfigError`` naming it; the process prints that and exits. Secrets are kept in
fields whose ``repr`` is hidden, so logging a ``Settings`` cannot leak them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis as redis_lib

from service.calls import ACCOUNT_SID_RE, CALLBACK_PATH
from service.errors import ConfigError
from service.http import require_secure_url
from service.redis_fork_check import ForkCheckedBlockingPool, ForkCheckedPool
from service.redis_packing import pack_directly

LEVELS = ("WARNING", "ERROR")
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Longest ANALYSIS_DELAY_SECONDS: an hour is already far from "within minutes", and a
#: waiting call must stay well inside the intake's one-day memory of it (intake.CALL_TTL_S).
MAX_ANALYSIS_DELAY_S = 3600
KNOWN_EDGES = ("sdk_edge", "client_edge", "sip_edge", "carrier_edge", "unknown_edge")
#: Not an Events API edge: a leg with no SDK party is read from its Call Summary.
CALL_SUMMARY = "call_summary"
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
#: How long a thread waits for a free connection of a bounded pool before a Redis error.
POOL_WAIT_S = 10
DEFAULT_REDIS_URL = "redis://localhost:6379/0"


@dataclass(frozen=True)
class Settings:
    """callwatch's configuration (see the README's table for each variable)."""

    twilio_account_sid: str
    twilio_auth_token: str = field(repr=False)
    twilio_auth_token_secondary: str | None = field(default=None, repr=False)
    twilio_api_key_sid: str | None = None
    twilio_api_key_secret: str | None = field(default=None, repr=False)
    twilio_insights_base_url: str = "https://insights.twilio.com"
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    redis_tls_verify: bool = True
    public_base_url: str | None = None
    trusted_proxy_hops: int = 0
    twilio_validate_signatures: bool = True
    analysis_delay_seconds: int = 90
    analysis_recheck_seconds: tuple[int, ...] = (60, 180, 600)
    insights_edges: tuple[str, ...] = ("sdk_edge",)
    alert_min_level: str = "WARNING"
    alert_ignore: frozenset[str] = frozenset()
    alert_outcomes: bool = False
    slack_webhook_url: str | None = field(default=None, repr=False)
    alert_webhook_urls: tuple[str, ...] = ()
    alert_webhook_secret: str | None = field(default=None, repr=False)
    delivery_retry_seconds: tuple[int, ...] = (5, 30, 120, 600, 1800)
    log_level: str = "INFO"
    log_format: str = "json"
    port: int = 8000
    #: The routing file's text as ``CALLWATCH_CONFIG`` gives it (``service.routing_file`` parses it).
    callwatch_config: str | None = field(default=None, repr=False)
    callwatch_config_file: str | None = None
    pagerduty_events_url: str = PAGERDUTY_EVENTS_URL
    smtp_url: str | None = field(default=None, repr=False)
    alert_email_from: str | None = None
    # --- every leg, every account (TWILIO_ACCOUNTS, child legs, voice agents, summaries) ---
    #: ``(account SID, auth token)`` pairs of more accounts; an account listed twice has
    #: both tokens accepted and tried (a rotation).
    twilio_accounts: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    twilio_api_base_url: str = "https://api.twilio.com"
    follow_child_legs: bool = True
    voice_agent_latency_ms: int = 1500
    summary_delay_seconds: int = 600
    #: ``SLACK_SIGNING_SECRET``: Slack messages carry buttons answered at ``POST /slack/actions``.
    slack_signing_secret: str | None = field(default=None, repr=False)
    #: ``METRICS_TOKEN``: when set, ``/metrics`` wants ``Authorization: Bearer <token>``.
    metrics_token: str | None = field(default=None, repr=False)
    #: ``HEARTBEAT_URL``: an outside dead man's switch pinged every minute (it holds a token).
    heartbeat_url: str | None = field(default=None, repr=False)

    @property
    def insights_auth(self) -> tuple[str, str]:
        """HTTP Basic credentials for Insights: the API key when set, else the account."""
        if self.twilio_api_key_sid and self.twilio_api_key_secret:
            return (self.twilio_api_key_sid, self.twilio_api_key_secret)
        return (self.twilio_account_sid, self.twilio_auth_token)

    @property
    def events_edges(self) -> tuple[str, ...]:
        """The ``INSIGHTS_EDGES`` the Events API is asked for (``call_summary`` is not one)."""
        return tuple(edge for edge in self.insights_edges if edge != CALL_SUMMARY)

    @property
    def reads_summaries(self) -> bool:
        return CALL_SUMMARY in self.insights_edges

    @property
    def auth_tokens(self) -> tuple[str, ...]:
        """Tokens accepted for ``X-Twilio-Signature``: primary first, then secondary."""
        if self.twilio_auth_token_secondary:
            return (self.twilio_auth_token, self.twilio_auth_token_secondary)
        return (self.twilio_auth_token,)

    def redis(self, *, bounded: int | None = None, **options: Any) -> redis_lib.Redis:
        """A Redis client for ``REDIS_URL``; with ``REDIS_TLS_VERIFY=false`` a ``rediss://``
        server's certificate is not checked (Heroku Redis presents a self-signed one).
        ``bounded``: at most that many connections, a caller waiting (up to its
        ``socket_timeout``, else ``POOL_WAIT_S``) for a free one (redis-py's
        ``BlockingConnectionPool``): a process's share of the plan's connection limit."""
        return _redis_client(self.redis_url, self.redis_tls_verify, bounded, options)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and check every variable; raise ``ConfigError`` naming the first bad one."""
        env = _Env(environ)
        account_sid = env.required("TWILIO_ACCOUNT_SID")
        if not ACCOUNT_SID_RE.match(account_sid):
            raise ConfigError("TWILIO_ACCOUNT_SID", "must be AC followed by 32 hex digits")
        key_sid = env.optional("TWILIO_API_KEY_SID")
        key_secret = env.optional("TWILIO_API_KEY_SECRET")
        if bool(key_sid) != bool(key_secret):
            missing = "TWILIO_API_KEY_SECRET" if key_sid else "TWILIO_API_KEY_SID"
            raise ConfigError(missing, "TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET go together")
        webhook_urls = tuple(env.url("ALERT_WEBHOOK_URLS", u) for u in env.csv("ALERT_WEBHOOK_URLS"))
        inline, path = env.optional("CALLWATCH_CONFIG"), env.optional("CALLWATCH_CONFIG_FILE")
        if inline and path:
            raise ConfigError("CALLWATCH_CONFIG_FILE",
                              "set CALLWATCH_CONFIG or CALLWATCH_CONFIG_FILE, not both")
        slack = env.optional("SLACK_WEBHOOK_URL")
        public = env.optional("PUBLIC_BASE_URL")
        edges = tuple(env.csv("INSIGHTS_EDGES", "sdk_edge"))
        for edge in edges:
            if edge not in (*KNOWN_EDGES, CALL_SUMMARY):
                raise ConfigError("INSIGHTS_EDGES", f"unknown edge {edge!r}; use "
                                                    f"{', '.join((*KNOWN_EDGES, CALL_SUMMARY))}")
        if not edges or edges == (CALL_SUMMARY,):
            raise ConfigError("INSIGHTS_EDGES", "name at least one Events API edge")
        ignore = frozenset(env.csv("ALERT_IGNORE"))
        for pair in ignore:
            if pair.count("/") != 1 or "" in pair.split("/"):
                raise ConfigError("ALERT_IGNORE", f"{pair!r} is not a group/name pair")
        return cls(
            twilio_account_sid=account_sid,
            twilio_auth_token=env.required("TWILIO_AUTH_TOKEN"),
            twilio_auth_token_secondary=env.optional("TWILIO_AUTH_TOKEN_SECONDARY"),
            twilio_api_key_sid=key_sid,
            twilio_api_key_secret=key_secret,
            twilio_insights_base_url=env.url(
                "TWILIO_INSIGHTS_BASE_URL",
                env.optional("TWILIO_INSIGHTS_BASE_URL") or "https://insights.twilio.com",
            ).rstrip("/"),
            redis_url=_redis_url(env.optional("REDIS_URL") or DEFAULT_REDIS_URL),
            redis_tls_verify=env.boolean("REDIS_TLS_VERIFY", True),
            public_base_url=_public_base_url(env.url("PUBLIC_BASE_URL", public)) if public else None,
            trusted_proxy_hops=env.integer("TRUSTED_PROXY_HOPS", 0, minimum=0),
            twilio_validate_signatures=env.boolean("TWILIO_VALIDATE_SIGNATURES", True),
            analysis_delay_seconds=env.integer("ANALYSIS_DELAY_SECONDS", 90, minimum=0,
                                               maximum=MAX_ANALYSIS_DELAY_S),
            analysis_recheck_seconds=env.seconds_list("ANALYSIS_RECHECK_SECONDS", "60,180,600",
                                                      allow_empty=True),
            insights_edges=edges,
            alert_min_level=env.choice("ALERT_MIN_LEVEL", "WARNING", LEVELS, upper=True),
            alert_ignore=ignore,
            alert_outcomes=env.boolean("ALERT_OUTCOMES", False),
            slack_webhook_url=env.url("SLACK_WEBHOOK_URL", slack) if slack else None,
            alert_webhook_urls=webhook_urls,
            alert_webhook_secret=env.optional("ALERT_WEBHOOK_SECRET"),
            delivery_retry_seconds=env.seconds_list("DELIVERY_RETRY_SECONDS", "5,30,120,600,1800"),
            log_level=env.choice("LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            log_format=env.choice("LOG_FORMAT", "json", LOG_FORMATS),
            port=env.integer("PORT", 8000, minimum=1, maximum=65535),
            callwatch_config=inline,
            callwatch_config_file=path,
            pagerduty_events_url=env.url("PAGERDUTY_EVENTS_URL",
                                         env.optional("PAGERDUTY_EVENTS_URL") or PAGERDUTY_EVENTS_URL),
            smtp_url=_smtp_url(env.optional("SMTP_URL")),
            alert_email_from=_email_from(env.optional("ALERT_EMAIL_FROM")),
            twilio_accounts=_accounts(env.optional("TWILIO_ACCOUNTS"), account_sid),
            twilio_api_base_url=env.url(
                "TWILIO_API_BASE_URL",
                env.optional("TWILIO_API_BASE_URL") or "https://api.twilio.com").rstrip("/"),
            follow_child_legs=env.boolean("FOLLOW_CHILD_LEGS", True),
            voice_agent_latency_ms=env.integer("VOICE_AGENT_LATENCY_MS", 1500, minimum=1),
            summary_delay_seconds=env.integer("SUMMARY_DELAY_SECONDS", 600, minimum=0,
                                              maximum=MAX_ANALYSIS_DELAY_S * 6),
            slack_signing_secret=env.optional("SLACK_SIGNING_SECRET"),
            metrics_token=env.optional("METRICS_TOKEN"),
            heartbeat_url=_heartbeat_url(env.optional("HEARTBEAT_URL")),
        )


#: ``WEB_WORKER_CLASS``: gevent (the default) or gthread (behind a proxy that buffers requests).
WEB_WORKER_CLASSES = ("gevent", "gthread")


@dataclass(frozen=True)
class WebServer:
    """How gunicorn serves the web process (``gunicorn.conf.py`` reads these, in the master)."""

    host: str = "0.0.0.0"  # noqa: S104 - containers need it
    worker_class: str = "gevent"
    workers: int = 2
    threads: int = 4
    worker_connections: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WebServer:
        """``HOST``, ``WEB_WORKER_CLASS``, ``WEB_CONCURRENCY``, ``WEB_THREADS``, ``WEB_CONNECTIONS``."""
        env = _Env(environ)
        return cls(host=_host(env.optional("HOST") or cls.host),
                   worker_class=env.choice("WEB_WORKER_CLASS", cls.worker_class, WEB_WORKER_CLASSES),
                   workers=env.integer("WEB_CONCURRENCY", cls.workers, minimum=1, maximum=64),
                   threads=env.integer("WEB_THREADS", cls.threads, minimum=1, maximum=256),
                   worker_connections=env.integer("WEB_CONNECTIONS", cls.worker_connections,
                                                  minimum=1, maximum=100_000))


def _host(raw: str) -> str:
    """``HOST`` as gunicorn binds it: an IP address (IPv6 in brackets) or a host name."""
    try:
        address = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        if not raw.replace("-", "").replace(".", "").isalnum():
            raise ConfigError("HOST", f"must be an IP address or a host name, not {raw!r}") from None
        return raw
    return f"[{address}]" if address.version == 6 else str(address)


class _Env:
    """Typed reads of one environment mapping, each error naming its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError(name, "is required")
        return value

    def csv(self, name: str, default: str = "") -> list[str]:
        raw = self.optional(name) or default
        return [part.strip() for part in raw.split(",") if part.strip()]

    def integer(self, name: str, default: int, *, minimum: int | None = None,
                maximum: int | None = None) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, not {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(name, f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ConfigError(name, f"must be at most {maximum}")
        return value

    def seconds_list(self, name: str, default: str, *, allow_empty: bool = False) -> tuple[int, ...]:
        raw = self.optional(name)
        parts = (raw if raw is not None else default).split(",")
        values: list[int] = []
        for part in (p.strip() for p in parts):
            if not part:
                continue
            try:
                value = int(part)
            except ValueError:
                raise ConfigError(name, f"must be comma-separated whole seconds, not {part!r}") from None
            if value < 0:
                raise ConfigError(name, "waits cannot be negative")
            values.append(value)
        if not values and not allow_empty:
            raise ConfigError(name, "name at least one wait")
        return tuple(values)

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be true or false, not {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
        raw = self.optional(name) or default
        value = raw.upper() if upper else raw.lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, not {raw!r}")
        return value

    def url(self, name: str, value: str) -> str:
        """Check an http(s) URL: HTTPS, or plain HTTP to a loopback host only."""
        return require_secure_url(value, name)


def _public_base_url(value: str) -> str:
    """Scheme, host and port (a path prefix allowed): what Twilio's signed URL starts with."""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError:
        raise ConfigError("PUBLIC_BASE_URL", "has a port that is not a number from 1 to 65535") from None
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigError("PUBLIC_BASE_URL", "must not carry a query or fragment: give scheme and "
                                             "host, e.g. https://alerts.example.com")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("PUBLIC_BASE_URL", "must not carry a user or password")
    if parts.path.rstrip("/").endswith(CALLBACK_PATH):
        raise ConfigError("PUBLIC_BASE_URL", f"is the base URL, without {CALLBACK_PATH} "
                                             "(callwatch adds the request's path)")
    return value.rstrip("/")


def redis_from_env(environ: Mapping[str, str], **options: Any) -> redis_lib.Redis:
    """A client for ``REDIS_URL`` and ``REDIS_TLS_VERIFY`` alone, checked as
    ``Settings.from_env`` checks them: for a command that needs no other variable."""
    env = _Env(environ)
    url = _redis_url(env.optional("REDIS_URL") or DEFAULT_REDIS_URL)
    return _redis_client(url, env.boolean("REDIS_TLS_VERIFY", True), None, options)


def _redis_client(url: str, tls_verify: bool, bounded: int | None,
                  options: dict[str, Any]) -> redis_lib.Redis:
    """``Settings.redis``'s client (see there), for ``url``."""
    if not tls_verify and url.startswith("rediss://"):
        options.setdefault("ssl_cert_reqs", "none")
    if bounded is None:
        return pack_directly(redis_lib.Redis.from_pool(ForkCheckedPool.from_url(url, **options)))
    pool = ForkCheckedBlockingPool.from_url(
        url, max_connections=bounded, timeout=options.get("socket_timeout") or POOL_WAIT_S,
        **options)
    return pack_directly(redis_lib.Redis(connection_pool=pool))


def _redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL", "must start with redis://, rediss:// or unix://")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError:
        raise ConfigError("REDIS_URL", "has a port that is not a number from 1 to 65535") from None
    databases = parse_qs(parts.query).get("db", [])
    if parts.scheme != "unix" and parts.path.strip("/"):
        databases.append(parts.path.strip("/"))
    for db in databases:
        if not (db.isascii() and db.isdigit()):
            raise ConfigError("REDIS_URL", f"the database must be a number (redis://host:6379/0), "
                                           f"not {db!r}")
    return value


def _accounts(value: str | None, primary: str) -> tuple[tuple[str, str], ...]:
    """``TWILIO_ACCOUNTS``: comma-separated ``AC…:<auth token>`` pairs. The error names the
    pair by its position and account, never its token."""
    if value is None:
        return ()
    pairs: list[tuple[str, str]] = []
    for n, part in enumerate((p.strip() for p in value.split(",")), start=1):
        if not part:
            continue
        sid, sep, token = part.partition(":")
        sid, token = sid.strip(), token.strip()
        if not sep or not token:
            raise ConfigError("TWILIO_ACCOUNTS", f"pair {n} is not AC…:<auth token>")
        if not ACCOUNT_SID_RE.match(sid):
            raise ConfigError("TWILIO_ACCOUNTS", f"pair {n}: the account SID must be AC "
                                                 "followed by 32 hex digits")
        if sid == primary:
            raise ConfigError("TWILIO_ACCOUNTS", f"pair {n} repeats TWILIO_ACCOUNT_SID; its "
                                                 "tokens are TWILIO_AUTH_TOKEN(_SECONDARY)")
        if (sid, token) in pairs:
            continue
        pairs.append((sid, token))
    return tuple(pairs)


def _smtp_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("SMTP_URL", "must look like smtp://user:pass@host:587 or smtps://user:pass@host:465")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError:
        raise ConfigError("SMTP_URL", "has a port that is not a number from 1 to 65535") from None
    return value


def _email_from(value: str | None) -> str | None:
    if value is not None and ("@" not in value or any(c in value for c in "\r\n")):
        raise ConfigError("ALERT_EMAIL_FROM", "must be an email address, e.g. callwatch@example.com")
    return value


def _heartbeat_url(value: str | None) -> str | None:
    """``HEARTBEAT_URL``: https (plain http only on loopback), or unset."""
    return require_secure_url(value, "HEARTBEAT_URL") if value else None
