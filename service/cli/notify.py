"""``callwatch notify test SINK``: one clearly marked test message to a configured sink.

Reads the whole configuration as a process would (the variables and the routing file),
builds the sink and sends through the real delivery path
(``service.delivery.notify_test``): signed, at the sink's pace, within its limits. Prints
the receiver's answer; a refusal or an unreachable receiver is one line on stderr and
exit code 1 (a sink the configuration does not have, too). The delivery path's log lines
are shown with ``LOG_LEVEL=DEBUG`` only, on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from service.cli.redis_errors import redis_errors
from service.delivery.notify_test import notify_test
from service.delivery.sinks.registry import Sinks
from service.errors import CallwatchError
from service.http_session import http_session
from service.logs import configure_logging
from service.routing_file.load import Configuration


def add_commands(subparsers: Any) -> None:
    """``notify test SINK``."""
    notify = subparsers.add_parser("notify", help="send a test message to a sink",
                                   description="Check a sink without waiting for a failing call.")
    commands = notify.add_subparsers(title="commands", metavar="COMMAND")
    test = commands.add_parser("test", help="send one message marked TEST and print the answer",
                               description="Send one message marked TEST through the sink's real "
                                           "delivery path and print the receiver's answer.")
    test.add_argument("sink", metavar="SINK", help="a sink's name (`callwatch config check` lists them)")
    test.set_defaults(handler=run_test)
    notify.set_defaults(handler=lambda args: (notify.print_help(), 2)[1])


@redis_errors
def run_test(args: argparse.Namespace) -> int:
    """0 when the receiver took the message; 1 (one line on stderr) when not."""
    configuration = Configuration.from_env(os.environ)
    # The delivery path's own log lines would bury the one answer line: shown with DEBUG only.
    debug = configuration.settings.log_level == "DEBUG"
    configure_logging("DEBUG" if debug else "CRITICAL", configuration.settings.log_format,
                      cache=False, stream=sys.stderr)
    session = http_session(os.environ)
    sinks = Sinks.from_settings(configuration.settings,
                                configuration.routing.sinks if configuration.routing else (),
                                session=session)
    sink = sinks.get(args.sink)
    client = configuration.settings.redis(socket_timeout=5, socket_connect_timeout=5)
    try:
        result = notify_test(args.sink, sink=sink, redis=client, session=session)
    finally:
        client.close()
    if not result.ok:
        raise CallwatchError(f"notify test {args.sink}: {result.answer}")
    print(f"notify test {args.sink}: {result.answer}")
    return 0
