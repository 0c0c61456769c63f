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
import sys
from collections.abc import Callable, Sequence

from service.errors import CallwatchError, ConfigError, InvalidInput

#: ``module:function`` registrars; each adds subcommands to the subparsers it is given.
REGISTRARS: tuple[str, ...] = ("service.cli.analysis:add_commands", "service.cli.routing:add_commands",
                              "service.cli.incidents:add_commands", "service.cli.notify:add_commands")


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
        fail(f"configuration error: {error.variable}: {error.message}")
        return 2
    except InvalidInput as error:
        fail(str(error))
        return 2
    except CallwatchError as error:
        fail(str(error))
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


def fail(message: str) -> None:
    """One line on stderr, prefixed ``callwatch:`` (errors and warnings alike)."""
    print(f"callwatch: {message}", file=sys.stderr)
