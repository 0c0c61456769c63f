"""Pytest fixtures for the Twilio simulator; import them into a test module or conftest.

    from tests import simulator_fixtures
    simulator = simulator_fixtures.simulator   # a plain name keeps ruff (F811) quiet

``simulator`` is a started ``SimulatorServer`` on a free loopback port with the
development account, token and an API key: ``.url``, ``.account_sid``,
``.auth_token``, ``.api_key``, ``.add_call(scenario, call_sid=None, **options)``,
``.requests`` (the Events API request log), ``.set_faults(...)`` and ``.reset()``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.simulator.defaults import (
    DEV_ACCOUNT_SID,
    DEV_API_KEY_SECRET,
    DEV_API_KEY_SID,
    DEV_AUTH_TOKEN,
)
from devtools.simulator.server import SimulatorServer


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A running simulator that accepts the dev account token and the dev API key."""
    with SimulatorServer(account_sid=DEV_ACCOUNT_SID, auth_token=DEV_AUTH_TOKEN,
                         api_key=(DEV_API_KEY_SID, DEV_API_KEY_SECRET)) as server:
        yield server
