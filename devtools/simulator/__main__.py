"""``python -m devtools.simulator``: run the Twilio simulator in the foreground.

    python -m devtools.simulator --port 8010 --account-sid AC... --auth-token ...

Without credentials it accepts the fixed development ones (``defaults.py``).
Register calls with ``POST /_sim/calls``; see ``devtools/simulator/app.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import structlog

from devtools.simulator.defaults import DEFAULT_PORT, DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from devtools.simulator.server import SimulatorServer
from service.calls import ACCOUNT_SID_RE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.simulator",
        description="Local stand-in for Twilio's Voice Insights API (Events, Call Summary) "
                    "and the Calls API's list of child legs.",
        epilog="Play a call against a callwatch whose TWILIO_INSIGHTS_BASE_URL (and "
               "TWILIO_API_BASE_URL) is this simulator: "
               "python -m devtools.play SCENARIO --url CALLWATCH_URL --simulator "
               "http://127.0.0.1:PORT (devtools/simulator/sender.py signs its callbacks).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; keep it on loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--account-sid", default=DEV_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEV_AUTH_TOKEN)
    parser.add_argument("--api-key-sid", default=None)
    parser.add_argument("--api-key-secret", default=None)
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not ACCOUNT_SID_RE.match(args.account_sid):
        parser.error("--account-sid must be AC followed by 32 hex digits")
    if bool(args.api_key_sid) != bool(args.api_key_secret):
        parser.error("--api-key-sid and --api-key-secret go together")
    api_key = (args.api_key_sid, args.api_key_secret) if args.api_key_sid else None
    server = SimulatorServer(args.host, args.port, account_sid=args.account_sid,
                             auth_token=args.auth_token, api_key=api_key,
                             access_log=args.access_log)
    log = structlog.get_logger(__name__)
    log.info("simulator_started", url=f"http://{args.host}:{args.port}",
             account_sid=args.account_sid)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("simulator_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
