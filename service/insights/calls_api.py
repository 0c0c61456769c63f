"""``CallsClient``: a call's child legs from Twilio's Calls API (2010-04-01).

``GET {TWILIO_API_BASE_URL}/2010-04-01/Accounts/{AccountSid}/Calls.json?ParentCallSid=…``
lists the legs a call's ``<Dial>`` created (``ListCallResponse`` in Twilio's OpenAPI
description ``twilio_api_v2010.json``): ``calls`` holds ``api.v2010.account.call``
records (``sid``, ``parent_call_sid``, ``from``, ``to``, ``status``, ``direction``,
``duration`` as a string of seconds, ``end_time`` in RFC 2822) and ``next_page_uri``,
relative to the API's host, the next page or null. Every page is read, one request per
page at ``PageSize`` 1000 (the spec's maximum), so a phone leg with fewer than 1,000
children costs one request.

The reading (deadline, size cap, retries, the account's credentials, same-origin pages)
is ``InsightsClient``'s, pointed at the API's base URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.calls import ACCOUNT_SID_RE, CALL_SID_RE, CALL_STATUSES, Call
from service.errors import EventsNotReady, InsightsBadResponse, InvalidInput, PermanentError
from service.insights.client import InsightsClient

PAGE_SIZE = 1000
#: The longest ``from``/``to`` kept (the callback's own limit).
_MAX_TEXT = 256


class CallsClient:
    """Lists a call's child legs, every page, with one account's credentials."""

    def __init__(self, reader: InsightsClient) -> None:
        """``reader``: an ``InsightsClient`` whose base URL is ``TWILIO_API_BASE_URL`` and
        whose credentials are the call's account's."""
        self._reader = reader

    def __repr__(self) -> str:
        return f"CallsClient(base_url={self._reader.base_url!r})"

    def child_legs(self, account_sid: str, parent_sid: str) -> list[Call]:
        """Every leg ``parent_sid`` created, as ``Call`` values (``parent_call_sid`` set).

        Raises ``InvalidInput`` for malformed SIDs, ``InsightsUnavailable`` when the API
        stays busy or unreachable (retry later) and a ``PermanentError`` otherwise.
        """
        if not ACCOUNT_SID_RE.match(account_sid) or not CALL_SID_RE.match(parent_sid):
            raise InvalidInput("AccountSid and CallSid must be AC/CA followed by 32 hex digits")
        url: str | None = (f"{self._reader.base_url}/2010-04-01/Accounts/{account_sid}"
                           "/Calls.json")
        params: dict[str, Any] | None = {"ParentCallSid": parent_sid, "PageSize": PAGE_SIZE}
        give_up_at = self._reader.deadline()
        seen: set[str] = set()
        legs: list[Call] = []
        while url is not None:
            try:
                page = self._reader.get_json(url, params, call_sid=parent_sid,
                                             give_up_at=give_up_at)
            except EventsNotReady as error:  # 404: the account or the list is not there
                raise PermanentError(f"the Calls API has no list for {account_sid} ({error})",
                                     reason="calls_not_found", status=404) from error
            records = page.get("calls")
            if not isinstance(records, list):
                raise InsightsBadResponse("a Calls API page has no 'calls' list",
                                          reason="invalid_payload")
            legs.extend(leg for leg in (_leg(r, account_sid, parent_sid) for r in records)
                        if leg is not None)
            url = self._reader.next_url(page.get("next_page_uri"), seen)
            params = None  # the next page's URI carries every parameter
        return legs


def _leg(record: Any, account_sid: str, parent_sid: str) -> Call | None:
    """One call record as a ``Call``; None when it is not a readable child of the parent."""
    if not isinstance(record, Mapping):
        return None
    sid = record.get("sid")
    status = record.get("status")
    if not isinstance(sid, str) or not CALL_SID_RE.match(sid) or status not in CALL_STATUSES:
        return None
    parent = record.get("parent_call_sid")
    if parent not in (None, parent_sid):
        return None  # not what was asked for: never analysed as this parent's leg
    return Call(call_sid=sid, account_sid=account_sid, status=str(status),
                direction=_text(record.get("direction")), from_=_text(record.get("from")),
                to=_text(record.get("to")), duration_s=_seconds(record.get("duration")),
                parent_call_sid=parent_sid, timestamp=_text(record.get("end_time")))


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) and value else None


def _seconds(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None
