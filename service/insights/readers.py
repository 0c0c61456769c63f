"""The Twilio readers of one call, with its own account's credentials.

``readers_for`` builds, for the account a call belongs to, the Insights Events client
and the ``LegReader`` (child legs from the Calls API at ``TWILIO_API_BASE_URL``, the
Call Summary from Insights) the analysis step uses. Both share the worker's
``requests.Session`` and the account's ``InsightsCredentials`` (which token worked last
is remembered per account and process). ``UnknownAccount`` when the account is not
watched any more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from service.calls import Call
from service.insights.calls_api import CallsClient
from service.insights.client import InsightsClient
from service.insights.summary import CallSummary, SummaryClient

if TYPE_CHECKING:
    from service.insights.accounts import Accounts
    from service.settings import Settings

#: Called after each request with the API (``insights``, ``calls``), status and seconds.
OnRequest = Callable[[str, int | None, float], None]


class TwilioLegReader:
    """``service.analysis.legs.LegReader`` over Twilio's Calls API and Call Summary."""

    def __init__(self, calls: CallsClient, summaries: SummaryClient) -> None:
        self._calls = calls
        self._summaries = summaries

    def child_legs(self, call: Call) -> list[Call]:
        return self._calls.child_legs(call.account_sid, call.call_sid)

    def summary(self, call: Call) -> CallSummary:
        return self._summaries.fetch(call.call_sid)


@dataclass(frozen=True)
class Readers:
    events: InsightsClient
    legs: TwilioLegReader


def readers_for(settings: Settings, accounts: Accounts, account_sid: str, *,
                session: requests.Session, on_request: OnRequest | None = None) -> Readers:
    """The readers for calls of ``account_sid`` (``UnknownAccount`` if it is not watched)."""
    credentials = accounts.credentials(account_sid)

    def report(api: str) -> Callable[[int | None, float], None] | None:
        if on_request is None:
            return None
        return lambda status, seconds: on_request(api, status, seconds)

    insights = InsightsClient(settings.twilio_insights_base_url, credentials, session=session,
                              on_request=report("insights"))
    api = InsightsClient(settings.twilio_api_base_url, credentials, session=session,
                         on_request=report("calls"))
    return Readers(events=insights,
                   legs=TwilioLegReader(CallsClient(api), SummaryClient(insights)))
