"""``callwatch silence``, ``callwatch config check`` and ``callwatch routes test``.

The operator's side of routing, after Alertmanager's ``amtool``: silences are added,
listed and expired in the deployment's Redis (every worker sees them at once);
``config check`` validates the whole configuration as a process would at start-up
and prints the sinks (secrets masked) and routes; ``routes test`` tells where an
alert would go and which silence would stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis as redis_lib

from service.analysis.alert import Alert
from service.errors import CallwatchError, ConfigError, InvalidInput
from service.routing_file.parse import masked

Subparsers = Any


def _redis() -> redis_lib.Redis:
    from service.settings import Settings

    settings = Settings.from_env(os.environ)
    return settings.redis(socket_timeout=5, socket_connect_timeout=5)


def _redis_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A Redis that cannot answer is one line and exit code 1, not a traceback."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except redis_lib.RedisError as error:
            raise CallwatchError(f"Redis (REDIS_URL) could not answer: {type(error).__name__}") from None
    return run


def add_commands(subparsers: Subparsers) -> None:
    """``silence add|list|expire``, ``config check``, ``routes test``."""
    silence = subparsers.add_parser("silence", help="add, list or expire silences",
                                    description="Silences stop matching alerts for a while.")
    actions = silence.add_subparsers(title="actions", metavar="ACTION")
    add = actions.add_parser("add", help="silence matching alerts for a while",
                             description="Silence alerts matching every KEY=VALUE (route matcher "
                                         "keys; a,b or a repeated key means any of). Prints the id.")
    add.add_argument("matchers", nargs="+", metavar="KEY=VALUE")
    add.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                     help="how long, e.g. 30m, 2h, 1d (at most 30 days)")
    add.add_argument("--comment", required=True, help="why (shown by silence list)")
    add.add_argument("--author", default=os.environ.get("USER"), help="who (default: $USER)")
    add.set_defaults(handler=run_silence_add)
    listing = actions.add_parser("list", help="list active silences")
    listing.set_defaults(handler=run_silence_list)
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("silence_id", metavar="ID")
    expire.set_defaults(handler=run_silence_expire)

    config = subparsers.add_parser("config", help="check the configuration")
    config_actions = config.add_subparsers(title="actions", metavar="ACTION")
    check = config_actions.add_parser(
        "check", help="validate the environment and routing file; print sinks and routes",
        description="Exit 0 when the configuration is valid, 1 (with the reason) when not.")
    check.set_defaults(handler=run_config_check)

    routes = subparsers.add_parser("routes", help="test where an alert would go")
    routes_actions = routes.add_subparsers(title="actions", metavar="ACTION")
    test = routes_actions.add_parser(
        "test", help="print the routes and sinks an alert would reach",
        description="Read an alert (a webhook body or its data; - for stdin) and print the routes "
                    "it matches, the sinks it would go to, and any silence that would stop it.")
    test.add_argument("file", metavar="FILE")
    test.set_defaults(handler=run_routes_test)


@_redis_errors
def run_silence_add(args: argparse.Namespace) -> int:
    from service.delivery.silences import Silences, parse_duration, parse_pairs

    matcher = parse_pairs(args.matchers)
    duration = parse_duration(args.duration)
    if not args.comment.strip():
        raise InvalidInput("--comment: say why the alerts are silenced")
    silence = Silences(_redis()).add(matcher, duration, args.comment.strip(), args.author)
    print(silence.id)
    return 0


@_redis_errors
def run_silence_list(args: argparse.Namespace) -> int:
    from service.delivery.silences import Silences

    silences = Silences(_redis()).active()
    if not silences:
        print("no active silences")
    for silence in silences:
        by = f" by {silence.author}" if silence.author else ""
        print(f"{silence.id}  until {silence.ends_at.isoformat()}{by}  "
              f"{silence.matcher.describe()}  # {silence.comment}")
    return 0


@_redis_errors
def run_silence_expire(args: argparse.Namespace) -> int:
    from service.delivery.silences import Silences

    if not Silences(_redis()).expire(args.silence_id):
        raise InvalidInput(f"no active silence has the id {args.silence_id!r}")
    print(f"expired {args.silence_id}")
    return 0


def run_config_check(args: argparse.Namespace) -> int:
    from service.delivery.routing import Router
    from service.routing_file.load import Configuration

    try:
        configuration = Configuration.from_env(os.environ)
        specs = configuration.sinks
    except ConfigError as error:
        print(f"callwatch: configuration error: {error.variable}: {error.message}", file=sys.stderr)
        return 1
    routing = configuration.routing
    print(f"configuration is valid ({routing.source if routing else 'environment variables only'})")
    print("sinks:")
    for spec in specs:
        options = " ".join(f"{k}={v}" for k, v in masked(spec).items())
        print(f"  {spec.name}: {spec.type} {options}".rstrip())
    router = Router.from_config(routing, [spec.name for spec in specs])
    print("routes:")
    for index, route in enumerate(router.routes):
        print(f"  {index}. {route.name}: match {route.match.describe()} -> "
              f"{', '.join(route.sinks) or '(drop)'}{' (continue)' if route.continue_ else ''}"
              f"{_policies(route.storm, route.ratio)}")
    default = router.default
    if default is None:
        print("  default: none (alerts no route takes are logged alert_unrouted)")
    else:
        print(f"  default -> {', '.join(default.sinks) or '(drop)'}{_policies(default.storm, default.ratio)}")
    return 0


def run_routes_test(args: argparse.Namespace) -> int:
    from service.delivery.routing import Router, explain
    from service.delivery.silences import Silences
    from service.routing_file.load import Configuration

    alert = load_alert(args.file)
    configuration = Configuration.from_env(os.environ)
    router = Router.from_config(configuration.routing, [s.name for s in configuration.sinks])
    print(f"alert {alert.alert_id} ({alert.severity}): {alert.summary}")
    lines = list(explain(router, alert))
    for line in lines:
        print(f"  {line}")
    matches = router.route(alert)
    if not lines and matches:
        print(f"  no route matched -> default: {', '.join(matches[0].sinks) or '(drop)'}")
    if not matches:
        print("  no route and no default take it: it would be logged alert_unrouted")
    print(f"sinks: {', '.join(router.sinks(alert)) or '(none)'}")
    try:
        redis = configuration.settings.redis(socket_timeout=5, socket_connect_timeout=5)
        silence = Silences(redis).matching(alert)
    except redis_lib.RedisError as error:
        print(f"silences: not checked, Redis is unreachable ({type(error).__name__})")
        return 0
    if silence is not None:
        print(f"silenced by {silence.id} until {silence.ends_at.isoformat()} "
              f"({silence.matcher.describe()}  # {silence.comment}): it would not be sent")
    else:
        print("silences: none matches")
    return 0


def load_alert(path: str) -> Alert:
    """An alert from a file: a ``call.alert`` webhook body, or its ``data``."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        data = json.loads(text)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read an alert: {error}") from None
    created = datetime.now(UTC)
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        stamp = data.get("timestamp")
        if isinstance(stamp, str):
            with contextlib.suppress(ValueError):
                created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        data = data["data"]
    try:
        return Alert.from_payload(data, created_at=created)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InvalidInput(f"{path}: not a callwatch alert (a webhook body or its data): "
                           f"missing or bad {error}") from None


def _policies(storm: Any, ratio: Any) -> str:
    parts = []
    if storm is None:
        parts.append("storm off")
    else:
        parts.append(f"storm {storm.calls} calls/{storm.within_s} s by {','.join(storm.group_by) or 'route'}")
    if ratio is not None:
        parts.append(f"ratio {ratio.percent:g}% of >= {ratio.min_calls} calls/{ratio.window_s} s")
    return "  [" + "; ".join(parts) + "]"

