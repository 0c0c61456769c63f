"""The ``callwatch`` command: offline classification, one-off analysis, and more.

Subcommands come from ``REGISTRARS``: each entry names a function that adds its
subcommands to the parser and sets ``handler`` (``args -> exit code``) on each. They
are imported when the command starts, so ``callwatch classify`` needs neither Flask
nor RQ, and another module adds a subcommand with one line here.

Exit codes: 0 done (with or without an alert), 1 Insights could not answer, 2 bad
input or configuration. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from service.analysis.alert import Alert, Issue, client_json
from service.analysis.classifier import AlertPolicy, build_alert
from service.calls import ACCOUNT_SID_RE, CALL_SID_RE, TERMINAL_STATUSES, Call
from service.decisions import Again, AnalysisOutcome, Failed
from service.errors import CallwatchError, ConfigError, InvalidInput
from service.insights.events import Event, parse_events

Subparsers = Any  # argparse's _SubParsersAction, which is private
#: ``module:function`` registrars; each adds subcommands to the ``Subparsers`` it is given.
REGISTRARS: tuple[str, ...] = ("service.cli:add_commands", "service.delivery.incidents.cli:add_commands")

_PLACEHOLDER_CALL = "CA" + "0" * 32
_PLACEHOLDER_ACCOUNT = "AC" + "0" * 32
_SHAPE = ('expected an Events API page {"meta": ..., "events": [...]}, a list of pages, '
          "or a list of events")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed by argparse
        return exit_.code if isinstance(exit_.code, int) else 2
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except ConfigError as error:
        _fail(f"configuration error: {error.variable}: {error.message}")
        return 2
    except InvalidInput as error:
        _fail(str(error))
        return 2
    except CallwatchError as error:
        _fail(str(error))
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registrar's subcommands."""
    parser = argparse.ArgumentParser(
        prog="callwatch", description="Alerts on Twilio Voice calls that went wrong.")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for target in REGISTRARS:
        module, _, function = target.partition(":")
        getattr(importlib.import_module(module), function)(subparsers)
    return parser


def add_commands(subparsers: Subparsers) -> None:
    """``classify`` (a saved Events API response) and ``analyze`` (a live call)."""
    classify = subparsers.add_parser(
        "classify", help="classify a saved Events API response",
        description="Classify the events in FILE (- for stdin) and print the alert, if any.")
    classify.add_argument("file", metavar="FILE")
    _add_call_options(classify)
    classify.add_argument("--min-level", type=str.upper, choices=("WARNING", "ERROR"),
                          default="WARNING", help="lowest event level that makes an issue")
    classify.add_argument("--ignore", action="append", default=[], metavar="GROUP/NAME",
                          type=_ignore_pair, help="a group/name pair never alerted on (repeatable)")
    classify.set_defaults(handler=run_classify)

    analyze = subparsers.add_parser(
        "analyze", help="fetch a call's events from Voice Insights and classify them",
        description="Fetch CALL_SID's events (settings from the environment) and classify them.")
    analyze.add_argument("call_sid", metavar="CALL_SID")
    _add_call_options(analyze)
    analyze.set_defaults(handler=run_analyze)


def run_classify(args: argparse.Namespace) -> int:
    """``callwatch classify FILE``: offline, from a saved response."""
    events = load_events(args.file)
    call_sid = _first(events, "call_sid", CALL_SID_RE) or _PLACEHOLDER_CALL
    account_sid = _first(events, "account_sid", ACCOUNT_SID_RE) or _PLACEHOLDER_ACCOUNT
    policy = AlertPolicy(min_level=args.min_level, ignore=frozenset(args.ignore))
    return _report(_call(call_sid, account_sid, args), events, policy, as_json=args.json)


def run_analyze(args: argparse.Namespace) -> int:
    """``callwatch analyze CA…``: fetch from Insights with the environment's settings."""
    if not CALL_SID_RE.match(args.call_sid):
        raise InvalidInput(f"{args.call_sid!r} is not a CallSid (CA followed by 32 hex digits)")
    from service.analysis.step import AnalysisPolicy, AnalysisRequest, analyze_step
    from service.insights.client import InsightsClient
    from service.settings import Settings

    settings = Settings.from_env(os.environ)
    _log_to_stderr(settings.log_level, settings.log_format)
    call = _call(args.call_sid, settings.twilio_account_sid, args)
    client = InsightsClient(settings.twilio_insights_base_url, settings.insights_auth)
    events: list[Event] = []

    def fetch(call_sid: str) -> list[Event]:
        events.extend(client.fetch_events(call_sid, settings.insights_edges))
        return events

    try:
        # The worker's own step, once: no re-checks, no retries, no deliveries.
        result = analyze_step(AnalysisRequest(call), fetch=fetch,
                              policy=AnalysisPolicy.from_settings(settings), route=lambda alert: [],
                              now=datetime.now(UTC))
    finally:
        client.close()
    decision = result.decision
    if isinstance(decision, Failed):
        _fail(f"Insights: {decision.message}")
        return 1
    if isinstance(decision, Again):
        if decision.outcome == AnalysisOutcome.RECHECK:
            _fail(f"Insights has no events for {args.call_sid} yet "
                  "(events usually appear within 90 s of the call's end)")
        else:
            _fail(f"Insights is unavailable; try again in {decision.after_s:.0f} s")
        return 1
    return _print(result.alert, len(events), settings.alert_min_level, as_json=args.json)


def load_events(path: str) -> list[Event]:
    """The events of a saved Events API response; ``InvalidInput`` says what is wrong."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{path}: not JSON ({error})") from None
    return parse_events(_raw_events(data, path))


def format_alert(alert: Alert) -> str:
    """The alert for a person: summary, then one line per issue, then the client."""
    lines = [f"{alert.severity.upper()}: {alert.summary}", f"  alert_id {alert.alert_id}"]
    lines += [f"  - {_issue_line(issue)}" for issue in alert.issues]
    if alert.truncated_issues:
        lines.append(f"  ... and {alert.truncated_issues} more issues not shown")
    client = _client_line(alert)
    if client:
        lines.append(f"  client: {client}")
    return "\n".join(lines)


def _raw_events(data: Any, path: str) -> list[Any]:
    if isinstance(data, dict):
        return _page_events(data, path)
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: {_SHAPE}")
    if not all(isinstance(item, dict) for item in data):
        raise InvalidInput(f"{path}: every item of the list must be a JSON object; {_SHAPE}")
    if data and all("events" in item for item in data):
        return [raw for page in data for raw in _page_events(page, path)]
    if any("events" in item for item in data):
        raise InvalidInput(f"{path}: a list mixing pages and events; {_SHAPE}")
    return data


def _page_events(page: dict[str, Any], path: str) -> list[Any]:
    events = page.get("events")
    if not isinstance(events, list):
        raise InvalidInput(f"{path}: no \"events\" list; {_SHAPE}")
    if not all(isinstance(item, dict) for item in events):
        raise InvalidInput(f"{path}: every event must be a JSON object")
    return events


def _report(call: Call, events: Sequence[Event], policy: AlertPolicy, *, as_json: bool) -> int:
    alert = build_alert(call, events, policy, now=datetime.now(UTC))
    return _print(alert, len(events), policy.min_level, as_json=as_json)


def _print(alert: Alert | None, events: int, min_level: str, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(alert.to_envelope() if alert else None, indent=2))
    elif alert is None:
        print(f"no alert ({events} events, none at or above {min_level})")
    else:
        print(format_alert(alert))
    return 0


def _issue_line(issue: Issue) -> str:
    text = f"[{issue.severity}] {issue.key} x{issue.count}"
    if issue.first_at:
        text += f" from {issue.first_at}"
    if issue.duration_s is not None:
        text += f", raised {issue.duration_s:g} s, {'cleared' if issue.cleared else 'not cleared'}"
    return f"{text}: {issue.description}" if issue.description else text


def _client_line(alert: Alert) -> str:
    data = client_json(alert.client)
    if data is None:
        return ""
    sdk, os_, device, where = data["sdk"], data["os"], data["device"], data["location"]
    parts = [
        " ".join(filter(None, (sdk["type"], sdk["version"]))) + (f" ({sdk['platform']})"
                                                                  if sdk["platform"] else ""),
        " ".join(filter(None, (os_["name"], os_["version"]))),
        " ".join(filter(None, (device["vendor"], device["model"]))),
        " ".join(filter(None, (where["city"], where["country_code"]))),
    ]
    return ", ".join(part.strip() for part in parts if part.strip())


def _add_call_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the webhook envelope")
    parser.add_argument("--status", choices=sorted(TERMINAL_STATUSES), default="completed",
                        help="the call's terminal status (default: completed)")
    parser.add_argument("--duration", type=int, metavar="SECONDS", help="the call's duration")
    parser.add_argument("--sip-code", type=int, metavar="CODE", help="the SipResponseCode")


def _call(call_sid: str, account_sid: str, args: argparse.Namespace) -> Call:
    return Call(call_sid=call_sid, account_sid=account_sid, status=args.status,
                duration_s=args.duration, sip_response_code=args.sip_code)


def _first(events: Sequence[Event], attribute: str, pattern: re.Pattern[str]) -> str | None:
    """The first well-formed ``attribute`` among the events: the saved call's own SID."""
    for event in events:
        value = getattr(event, attribute)
        if value and pattern.match(value):
            return str(value)
    return None


def _ignore_pair(value: str) -> str:
    if value.count("/") != 1 or "" in value.split("/"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a group/name pair")
    return value


def _log_to_stderr(level: str, fmt: str) -> None:
    """The usual log set-up, on stderr so that stdout holds only the alert."""
    from service.logs import configure_logging

    configure_logging(level, fmt, cache=False)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def _fail(message: str) -> None:
    print(f"callwatch: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
