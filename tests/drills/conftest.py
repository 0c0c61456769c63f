"""Fault drills: callwatch's real processes against a private Redis, the simulator and
loopback receivers. Long drills carry the ``drill`` marker and run only under
``-m drill`` (``make drills``); the short ones run with ``make test``.

Each drill records a ``Tally``; they are printed as they finish and again in the
terminal summary, so ``make drills`` shows the counts without ``-s``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devtools.redis_server import RedisServer, free_port
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver
from tests.drills.harness import Stack, Tally, stack_env

_TALLIES = pytest.StashKey[list[Tally]]()
#: The longest one drill may run before pytest-timeout ends the run with every thread's stack.
DRILL_TIMEOUT_S = 900


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``drill``-marked tests unless the marker expression asks for drills; a drill
    that runs gets ``DRILL_TIMEOUT_S`` instead of the suite's per-test timeout."""
    if "drill" in (config.getoption("-m") or ""):
        for item in items:
            if item.get_closest_marker("drill") is not None:
                item.add_marker(pytest.mark.timeout(DRILL_TIMEOUT_S))
        return
    skip = pytest.mark.skip(reason="long fault drill: run with `make drills` (pytest -m drill)")
    for item in items:
        if item.get_closest_marker("drill") is not None:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tallies = terminalreporter.config.stash.get(_TALLIES, [])
    if tallies:
        terminalreporter.section("fault drills")
        for tally in tallies:
            terminalreporter.write_line(tally.line())


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[Tally], None]:
    """Print a drill's tally now and keep it for the terminal summary."""
    def record(tally: Tally) -> None:
        request.config.stash.setdefault(_TALLIES, []).append(tally)
        print("\n" + tally.line(), flush=True)
    return record


@pytest.fixture
def drill_redis() -> Iterator[RedisServer]:
    """A redis-server of the drill's own, so it may be stopped and its state is unshared."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(WEBHOOK_SECRET) as receiver:
        yield receiver


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(min_interval_s=1.0) as stand_in:
        yield stand_in


@pytest.fixture
def make_stack(drill_redis: RedisServer,
               simulator: SimulatorServer) -> Iterator[Callable[..., Stack]]:
    """Build a ``Stack`` (processes not started yet); everything it starts is closed after."""
    built: list[Stack] = []

    def make(**kwargs: object) -> Stack:
        env = stack_env(drill_redis.url, simulator, port=free_port(), **kwargs)  # type: ignore[arg-type]
        stack = Stack(drill_redis, simulator, env)
        built.append(stack)
        return stack

    yield make
    for stack in built:
        stack.close()
