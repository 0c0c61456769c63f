"""Fixtures for the PagerDuty, Teams and SMTP stand-ins (import them by name where used)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.pagerduty_standin import PagerDutyStandIn
from devtools.smtp_standin import SmtpStandIn
from devtools.teams_standin import TeamsStandIn


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyStandIn]:
    """A PagerDuty Events API v2 stand-in; ``.url`` is a PAGERDUTY_EVENTS_URL."""
    with PagerDutyStandIn() as server:
        yield server


@pytest.fixture
def teams() -> Iterator[TeamsStandIn]:
    """A Teams Workflows webhook stand-in; ``.url`` is a workflow URL."""
    with TeamsStandIn() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpStandIn]:
    """An SMTP server on loopback; ``.url`` is an SMTP_URL."""
    with SmtpStandIn() as server:
        yield server
