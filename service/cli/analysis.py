"""``callwatch classify`` (saved Events API pages) and ``callwatch analyze`` (a live call):
the analysis step, run once from the command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from service.analysis.alert import Alert, Issue, client_json
from service.analysis.classifier import AlertPolicy, build_alert
from service.calls import ACCOUNT_SID_RE, CALL_SID_RE, TERMINAL_STATUSES, Call
from service.cli import fail
from service.decisions import Again, AnalysisOutcome, Failed
from service.errors import InvalidInput
from service.insights.events import Event
from service.insights.saved_pages import read_pages
from service.text import printable

Subparsers = Any  # argparse's _SubParsersAction, which is private

_PLACEHOLDER_CALL = "CA" + "0" * 32
_PLACEHOLDER_ACCOUNT = "AC" + "0" * 32

def add_commands(subparsers: Subparsers) -> None:
    """``classify`` (a saved Events API response) and ``analyze`` (a live call)."""
    classify = subparsers.add_parser(
        "classify", help="classify a saved Events API response",
        description="Classify the events in FILE (- for stdin; several files are the pages "
                    "of one call) and print the alert, if any.")
    classify.add_argument("files", nargs="+", metavar="FILE")
    _add_call_options(classify)
    classify.add_argument("--min-level", type=str.upper, choices=("WARNING", "ERROR"),
                          default="WARNING", help="lowest event level that makes an issue")
    classify.add_argument("--ignore", action="append", default=[], metavar="GROUP/NAME",
                          type=_ignore_pair, help="a group/name pair never alerted on (repeatable)")
    classify.add_argument("--outcomes", action="store_true",
                          help="codes that only say how a call ended (busy, declined) become "
                               "warnings, as ALERT_OUTCOMES=true does")
    classify.set_defaults(handler=run_classify)

    analyze = subparsers.add_parser(
        "analyze", help="fetch a call's events from Voice Insights and classify them",
        description="Fetch CALL_SID's events (settings from the environment) and classify them.")
    analyze.add_argument("call_sid", metavar="CALL_SID")
    analyze.add_argument("--account", metavar="ACCOUNT_SID",
                         help="the call's account, read with its own credentials: "
                              "TWILIO_ACCOUNT_SID (the default) or one in TWILIO_ACCOUNTS")
    _add_call_options(analyze)
    analyze.set_defaults(handler=run_analyze)


def run_classify(args: argparse.Namespace) -> int:
    """``callwatch classify FILE...``: offline, from saved responses (the pages of one call).

    A page whose ``next_page_url`` names a page that was not given is reported on
    stderr: the alert (or its absence) then covers only the pages read.
    """
    saved = read_pages(args.files)
    events = saved.events
    for path, url in saved.unread:
        fail(f"warning: {path}: its next_page_url was not read, so events may be missing "
             f"and the result covers only the pages given; save every page (follow "
             f"next_page_url) and pass them all: {url}")
    calls = {event.call_sid for event in events if event.call_sid}
    if len(calls) > 1:
        fail(f"warning: the files hold events of {len(calls)} different calls; they are "
             "classified as one")
    call_sid = _first(events, "call_sid", CALL_SID_RE) or _PLACEHOLDER_CALL
    account_sid = _first(events, "account_sid", ACCOUNT_SID_RE) or _PLACEHOLDER_ACCOUNT
    policy = AlertPolicy(min_level=args.min_level, ignore=frozenset(args.ignore),
                         outcomes=args.outcomes)
    return _report(_call(call_sid, account_sid, args), events, policy, as_json=args.json)


def run_analyze(args: argparse.Namespace) -> int:
    """``callwatch analyze CA…``: fetch from Insights with the environment's settings."""
    if not CALL_SID_RE.match(args.call_sid):
        raise InvalidInput(f"{args.call_sid!r} is not a CallSid (CA followed by 32 hex digits)")
    from service.analysis.step import AnalysisPolicy, AnalysisRequest, analyze_step
    from service.insights.accounts import Accounts
    from service.insights.client import InsightsClient
    from service.settings import Settings

    settings = Settings.from_env(os.environ)
    _log_to_stderr(settings.log_level, settings.log_format)
    account_sid = args.account or settings.twilio_account_sid
    accounts = Accounts.from_settings(settings)
    if account_sid not in accounts:
        raise InvalidInput(f"{account_sid!r} is neither TWILIO_ACCOUNT_SID nor listed in "
                           "TWILIO_ACCOUNTS")
    call = _call(args.call_sid, account_sid, args)
    client = InsightsClient(settings.twilio_insights_base_url, accounts.credentials(account_sid))
    events: list[Event] = []

    def fetch(call_sid: str) -> list[Event]:
        events.extend(client.fetch_events(call_sid, settings.events_edges))
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
        fail(f"Insights: {decision.message}")
        return 1
    if isinstance(decision, Again):
        if decision.outcome == AnalysisOutcome.RECHECK:
            fail(f"Insights has no events for {args.call_sid} yet "
                 "(events usually appear within 90 s of the call's end)")
        else:
            fail(f"Insights is unavailable; try again in {decision.after_s:.0f} s")
        return 1
    return _print(result.alert, len(events), settings.alert_min_level, as_json=args.json)


def format_alert(alert: Alert) -> str:
    """The alert for a person: summary, then one line per issue, then the client."""
    lines = [f"{alert.severity.upper()}: {alert.summary}", f"  alert_id {alert.alert_id}"]
    lines += [f"  - {_issue_line(issue)}" for issue in alert.issues]
    if alert.truncated_issues:
        lines.append(f"  ... and {alert.truncated_issues} more issues not shown")
    client = _client_line(alert)
    if client:
        lines.append(f"  client: {client}")
    # Summaries, SDK messages and client metadata come from Twilio and the caller's device.
    return "\n".join(printable(line) for line in lines)


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
    if issue.description:
        text += f": {issue.description}"
    if issue.sdk_message and issue.sdk_message != issue.description:
        text += f" (SDK: {issue.sdk_message})"
    return text


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

    configure_logging(level, fmt, cache=False, stream=sys.stderr)
