"""``callwatch silence``, ``callwatch config check`` and ``callwatch routes test``.

The operator's side of routing, after Alertmanager's ``amtool``: silences are added,
listed and expired in the deployment's Redis (every worker sees them at once);
``config check`` validates the whole configuration as a process would at start-up
and prints the sinks (secrets masked), routes and warnings (routes no alert can reach),
and fits Heroku's release phase: exit 1 with one line when the configuration is bad;
``routes test`` tells where an alert (from a file, or built from ``--from``, ``--to``,
``--identity``, ``--account``) would go and which silence would stop it.

Every line printed goes through ``service.text.printable``: comments, authors, matcher
values and alert text come from people, Slack and Twilio, and a newline or an escape
sequence in them must not forge a row or drive the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TextIO

import redis as redis_lib

from service.analysis.alert import Alert
from service.calls import ACCOUNT_SID_RE, Call
from service.cli.redis_errors import redis_errors
from service.errors import ConfigError, InvalidInput
from service.json_files import read_json
from service.routing_file.parse import masked
from service.text import printable

Subparsers = Any


def _redis() -> redis_lib.Redis:
    """The deployment's Redis from ``REDIS_URL`` alone: an operator silencing alerts from a
    laptop or a one-off dyno needs no Twilio credentials."""
    from service.settings import redis_from_env

    return redis_from_env(os.environ, socket_timeout=5, socket_connect_timeout=5)


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
    test.add_argument("file", metavar="FILE", nargs="?",
                      help="an alert: a webhook body or its data (- for stdin); without it the "
                           "alert is built from the options below")
    test.add_argument("--from", dest="from_", metavar="FROM",
                      help="the caller, e.g. +14155550123 or client:alice (replaces the file's)")
    test.add_argument("--to", metavar="TO", help="the called party (replaces the file's)")
    test.add_argument("--identity", metavar="NAME",
                      help="the Voice SDK party's identity: client:NAME as --from, or as --to "
                           "when --from is given")
    test.add_argument("--account", metavar="AC...", help="the call's account SID (a sub-account)")
    test.set_defaults(handler=run_routes_test)


@redis_errors
def run_silence_add(args: argparse.Namespace) -> int:
    from service.delivery.silences import Silences, parse_duration, parse_pairs

    matcher = parse_pairs(args.matchers)
    duration = parse_duration(args.duration)
    if not args.comment.strip():
        raise InvalidInput("--comment: say why the alerts are silenced")
    silence = Silences(_redis()).add(matcher, duration, args.comment.strip(), args.author)
    print(silence.id)
    return 0


@redis_errors
def run_silence_list(args: argparse.Namespace) -> int:
    from service.delivery.silences import Silences

    silences = Silences(_redis()).active()
    if not silences:
        print("no active silences")
    for silence in silences:
        by = f" by {silence.author}" if silence.author else ""
        _line(f"{silence.id}  until {silence.ends_at.isoformat()}{by}  "
              f"{silence.matcher.describe()}  # {silence.comment}")
    return 0


@redis_errors
def run_silence_expire(args: argparse.Namespace) -> int:
    from service.delivery.silences import Silences

    if not Silences(_redis()).expire(args.silence_id):
        raise InvalidInput(f"no active silence has the id {args.silence_id!r}")
    print(f"expired {args.silence_id}")
    return 0


def run_config_check(args: argparse.Namespace) -> int:
    from service.delivery.routing import Router
    from service.routing_file.load import Configuration
    from service.routing_file.unreachable import unreachable

    try:
        configuration = Configuration.from_env(os.environ)
        specs = configuration.sinks
    except ConfigError as error:
        # One line, exit 1: what a release phase (`release: callwatch config check`) shows.
        _line(f"callwatch: configuration error: {error.variable}: {error.message}", sys.stderr)
        return 1
    routing = configuration.routing
    print(f"configuration is valid ({routing.source if routing else 'environment variables only'})")
    print("sinks:")
    for spec in specs:
        options = " ".join(f"{k}={v}" for k, v in masked(spec).items())
        _line(f"  {spec.name}: {spec.type} {options}".rstrip())
    router = Router.from_config(routing, [spec.name for spec in specs])
    print("routes:")
    for index, route in enumerate(router.routes):
        _line(f"  {index}. {route.name}: match {route.match.describe()} -> "
              f"{', '.join(route.sinks) or '(drop)'}{' (continue)' if route.continue_ else ''}"
              f"{_policies(route.storm, route.ratio)}")
    default = router.default
    if default is None:
        print("  default: none (alerts no route takes are logged alert_unrouted)")
    else:
        print(f"  default -> {', '.join(default.sinks) or '(drop)'}{_policies(default.storm, default.ratio)}")
    warnings = unreachable(routing.routes, has_default=routing.default is not None) if routing else []
    for warning in warnings:
        _line(f"warning: {warning}")
    if warnings:
        print(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}: the configuration "
              "works, but some of it is never used")
    return 0


def run_routes_test(args: argparse.Namespace) -> int:
    from service.delivery.routing import Router, explain
    from service.delivery.silences import Silences
    from service.routing_file.load import Configuration

    configuration = Configuration.from_env(os.environ)
    alert = probe_alert(args, configuration.settings.twilio_account_sid)
    router = Router.from_config(configuration.routing, [s.name for s in configuration.sinks])
    _line(f"alert {alert.alert_id} ({alert.severity}): {alert.summary}")
    if args.file is None:
        print("  (built from the options: no issues, so matchers on severity, issue, "
              "error_code, category, edge, sdk_type or country_code see none)")
    lines = list(explain(router, alert))
    for line in lines:
        _line(f"  {line}")
    matches = router.route(alert)
    if not lines and matches:
        _line(f"  no route matched -> default: {', '.join(matches[0].sinks) or '(drop)'}")
    if not matches:
        print("  no route and no default take it: it would be logged alert_unrouted")
    _line(f"sinks: {', '.join(router.sinks(alert)) or '(none)'}")
    try:
        redis = configuration.settings.redis(socket_timeout=5, socket_connect_timeout=5)
        silence = Silences(redis).matching(alert)
    except redis_lib.RedisError as error:
        print(f"silences: not checked, Redis is unreachable ({type(error).__name__})")
        return 0
    if silence is not None:
        _line(f"silenced by {silence.id} until {silence.ends_at.isoformat()} "
              f"({silence.matcher.describe()}  # {silence.comment}): it would not be sent")
    else:
        print("silences: none matches")
    return 0


def probe_alert(args: argparse.Namespace, account_sid: str) -> Alert:
    """The alert ``routes test`` routes: the file's, with the call fields the options give
    replaced; without a file, a call from those options alone (and no issues)."""
    if args.file is None and not (args.from_ or args.to or args.identity or args.account):
        raise InvalidInput("routes test: give an alert FILE, or at least one of --from, --to, "
                           "--identity, --account")
    if args.account is not None and not ACCOUNT_SID_RE.match(args.account):
        raise InvalidInput(f"--account {args.account!r}: an account SID is AC and 32 hex digits")
    from_, to = args.from_, args.to
    if args.identity is not None:
        if not args.identity.strip() or (from_ and to):
            raise InvalidInput("--identity names the client: party: give it with at most one "
                               "of --from and --to")
        party = "client:" + args.identity.strip()
        from_, to = (from_, party) if from_ else (party, to)
    if args.file is not None:
        alert = load_alert(args.file)
        call = replace(alert.call, from_=from_ or alert.call.from_, to=to or alert.call.to,
                       account_sid=args.account or alert.call.account_sid)
        return replace(alert, call=call, summary="")
    call = Call(call_sid="CA" + "0" * 32, account_sid=args.account or account_sid,
                status="completed", from_=from_, to=to)
    return Alert(alert_id="alr_routes_test", created_at=datetime.now(UTC), call=call, issues=())


def load_alert(path: str) -> Alert:
    """An alert from a file: a ``call.alert`` webhook body, or its ``data``."""
    data = read_json(path)
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


def _line(text: str, stream: TextIO | None = None) -> None:
    """Print one line of a table or report, its control characters escaped."""
    print(printable(text), file=stream or sys.stdout)


def _policies(storm: Any, ratio: Any) -> str:
    parts = []
    if storm is None:
        parts.append("storm off")
    else:
        parts.append(f"storm {storm.calls} calls/{storm.within_s} s by {','.join(storm.group_by) or 'route'}")
    if ratio is not None:
        parts.append(f"ratio {ratio.percent:g}% of >= {ratio.min_calls} calls/{ratio.window_s} s")
    return "  [" + "; ".join(parts) + "]"

