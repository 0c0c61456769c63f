"""``python -m devtools.play SCENARIO``: play one simulated call against a running callwatch.

    python -m devtools.play sdk-error --url http://127.0.0.1:8000 \\
        --simulator http://127.0.0.1:8010

Registers a call of SCENARIO in the Twilio simulator (which then serves its events
to callwatch's worker), then posts the call's status callbacks to callwatch, signed
with the auth token as Twilio signs them. callwatch must be configured for it:
``TWILIO_INSIGHTS_BASE_URL`` (and ``TWILIO_API_BASE_URL``, for the child legs of
``inbound-to-agent``) is the simulator's URL, ``PUBLIC_BASE_URL`` is
``--url``, and the account SID and auth token are the ones given here (by default
the simulator's development ones, which ``make run`` and ``make dev`` use).
Prints the call's SID; the alert follows about ``ANALYSIS_DELAY_SECONDS`` later.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import requests

from devtools.simulator.defaults import DEFAULT_PORT, DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from devtools.simulator.scenarios import SCENARIOS
from devtools.simulator.sender import play_call

TERMINAL_STATUSES = ("completed", "failed", "busy", "no-answer", "canceled")


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value``; a whole number becomes an int, a decimal a float."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--option takes key=value, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.play", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(SCENARIOS), metavar="SCENARIO",
                        help=f"one of: {', '.join(sorted(SCENARIOS))}")
    parser.add_argument("--url", default="http://127.0.0.1:8000",
                        help="callwatch's base URL, its PUBLIC_BASE_URL (default %(default)s)")
    parser.add_argument("--simulator", default=f"http://127.0.0.1:{DEFAULT_PORT}",
                        help="the simulator callwatch's worker reads events from "
                             "(TWILIO_INSIGHTS_BASE_URL; default %(default)s)")
    parser.add_argument("--account-sid",
                        default=os.environ.get("TWILIO_ACCOUNT_SID", DEV_ACCOUNT_SID),
                        help="default: $TWILIO_ACCOUNT_SID, else the simulator's development SID")
    parser.add_argument("--auth-token", default=None,
                        help="signs the callbacks; default: $TWILIO_AUTH_TOKEN, else the "
                             "simulator's development token")
    parser.add_argument("--status", choices=TERMINAL_STATUSES, default="completed",
                        help="the call's last status (default %(default)s)")
    parser.add_argument("--sip-code", type=int, default=None,
                        help="SipResponseCode on the last callback (e.g. 404 with --status failed)")
    parser.add_argument("--option", type=parse_option, action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a scenario option (repeatable), e.g. duration_s=30")
    args = parser.parse_args(argv)
    token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or DEV_AUTH_TOKEN
    options = dict(args.option)
    if args.sip_code is not None:
        options["sip_response_code"] = args.sip_code
    answered = args.status == "completed"
    statuses = ("initiated", "ringing", "in-progress", args.status) if answered \
        else ("initiated", "ringing", args.status)
    try:
        sid = play_call(args.simulator, args.url, args.account_sid, token, args.scenario,
                        options=options or None, statuses=statuses)
    except requests.HTTPError as error:
        response = error.response
        who = "the simulator" if response is not None and \
            response.url.startswith(args.simulator.rstrip("/")) else "callwatch"
        detail = response.text[:300] if response is not None else ""
        print(f"{who} refused the request ({error}): {detail}\n"
              "check --url (callwatch's PUBLIC_BASE_URL), --account-sid and --auth-token",
              file=sys.stderr)
        return 1
    except requests.RequestException as error:
        print(f"could not reach {args.simulator} or {args.url}: {type(error).__name__}; "
              "is callwatch running (make dev) and is the simulator at --simulator?",
              file=sys.stderr)
        return 1
    print(sid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
