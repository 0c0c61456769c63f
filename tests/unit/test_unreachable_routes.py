"""A route after a catch-all without ``continue`` is reported; reachable files are not."""

from __future__ import annotations

from service.routing_file.parse import parse_config
from service.routing_file.unreachable import unreachable

SINKS = "sinks:\n  a: {type: log}\n"


def warnings(routes: str) -> list[str]:
    config = parse_config(SINKS + routes, {})
    return unreachable(config.routes, has_default=config.default is not None)


def test_routes_after_a_catch_all_are_never_reached() -> None:
    """Every route after an empty match without continue, and default, is named with why."""
    assert warnings("""
routes:
  - {match: {severity: error}, sinks: [a]}
  - {name: everything, sinks: [a]}
  - {match: {category: network}, sinks: [a]}
  - {name: mics, match: {error_code: 31401}, sinks: []}
default: [a]
""") == [
        "routes[2] is never reached: routes[1] (everything) matches every alert and has no "
        "`continue: true`",
        "routes[3] (mics) is never reached: routes[1] (everything) matches every alert and has "
        "no `continue: true`",
        "default is never used: routes[1] (everything) matches every alert and has no "
        "`continue: true`",
    ]


def test_a_catch_all_that_continues_or_comes_last_is_fine() -> None:
    """A catch-all with continue, or as the last route without default, hides nothing."""
    assert warnings("routes:\n  - {sinks: [a], continue: true}\n  - {match: {severity: error},"
                    " sinks: [a]}\ndefault: [a]\n") == []
    assert warnings("routes:\n  - {match: {severity: error}, sinks: [a]}\n  - {sinks: []}\n") == []
