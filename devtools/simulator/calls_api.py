"""The simulated 2010-04-01 Calls list and Voice Insights Call Summary.

``GET /2010-04-01/Accounts/{AccountSid}/Calls.json`` behaves as Twilio's OpenAPI
description (``twilio_api_v2010.json``, ``ListCall``) says: HTTP Basic auth as the
account in the path (its SID and auth token), the ``ParentCallSid`` filter, ``PageSize``
1..1000 (default 50), ``Page`` and ``PageToken``; the answer is ``ListCallResponse``:
``calls`` (each an ``api.v2010.account.call``: ``sid``, ``parent_call_sid``, ``from``,
``to``, ``status``, ``direction``, ``duration`` as a string, RFC 2822 times...) and the
paging fields ``first_page_uri``, ``next_page_uri``, ``previous_page_uri``, ``uri``,
``page``, ``page_size``, ``start``, ``end``, whose URIs are relative to the API's host.
Only ``ParentCallSid`` is honoured among the filters; the list holds the simulator's
child legs (a phone call's ``<Dial>`` legs), newest last.

``GET /v1/Voice/{CallSid}/Summary`` behaves as ``insights.v1.call.summary`` says:
``processing_state`` ``partial`` until ``summary_complete_after_s`` after the call was
registered, then ``complete``; ``ProcessingState=complete`` before then answers 404 with
Twilio's code 17001 (the status is not documented); the gateway edge's object and the
top-level ``tags`` carry the call's tags.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request

from devtools.simulator.events_api import (
    authenticate,
    fault_error,
    log_request,
    read_paging,
    twilio_error,
    unauthorized,
)
from devtools.simulator.scenarios import DEFAULT_EDGE, CallRecord
from devtools.simulator.state import SimulatorState
from service.calls import ACCOUNT_SID_RE, CALL_SID_RE

API_VERSION = "2010-04-01"
_TOKEN_RE = re.compile(r"^PA(CA[0-9a-fA-F]{32})$")
#: Summary ``call_type`` for each simulated call type.
_SUMMARY_CALL_TYPE = {"client": "client", "carrier": "carrier", "sip": "sip",
                      "trunking_originating": "trunking", "trunking_terminating": "trunking"}
_SUMMARY_STATE = {"completed": "completed", "busy": "busy", "failed": "fail",
                  "no-answer": "noanswer", "canceled": "canceled"}

calls_api = Blueprint("calls_api", __name__)


def _state() -> SimulatorState:
    state: SimulatorState = current_app.extensions["simulator"]
    return state


@calls_api.after_request
def _log(response: Response) -> Response:
    return log_request(response, "summary" if request.path.endswith("/Summary") else "calls")


@calls_api.get(f"/{API_VERSION}/Accounts/<account_sid>/Calls.json")
def list_calls(account_sid: str) -> Response:
    owner = authenticate()
    if owner is None:
        return unauthorized()
    if not ACCOUNT_SID_RE.match(account_sid) or owner != account_sid:
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    args = request.args
    parent = args.get("ParentCallSid")
    if parent is not None and not CALL_SID_RE.match(parent):
        return twilio_error(400, 20001, "Invalid ParentCallSid")
    paging = read_paging()
    if isinstance(paging, Response):
        return paging
    size, page = paging
    fault = _state().draw_fault()
    if fault is not None:
        return fault_error(fault, None, "legacy")
    legs = _state().children(parent, account_sid) if parent else []
    offset = page * size
    token = args.get("PageToken")
    if token is not None:
        match = _TOKEN_RE.match(token)
        sids = [leg.call_sid for leg in legs]
        if match is None or match.group(1) not in sids:
            return twilio_error(400, 20001, "Invalid PageToken")
        offset = sids.index(match.group(1)) + 1
    chunk = legs[offset:offset + size]
    return jsonify(_list_page(account_sid, parent, legs, chunk, page, size, offset))


def _list_page(account_sid: str, parent: str | None, legs: list[CallRecord],
               chunk: list[CallRecord], page: int, size: int, offset: int) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{account_sid}/Calls.json"

    def uri(page_no: int, after: CallRecord | None = None) -> str:
        params: list[tuple[str, Any]] = [("ParentCallSid", parent)] if parent else []
        params += [("PageSize", size), ("Page", page_no)]
        if after is not None:
            params.append(("PageToken", f"PA{after.call_sid}"))
        return f"{base}?{urlencode(params)}"

    has_next = offset + size < len(legs)
    return {
        "calls": [_call_resource(leg) for leg in chunk],
        "end": offset + max(len(chunk), 1) - 1,
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1, chunk[-1]) if has_next and chunk else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": offset,
        "uri": uri(page),
    }


def _call_resource(leg: CallRecord) -> dict[str, Any]:
    """One ``api.v2010.account.call``, with the fields the spec's example shows."""
    info = leg.leg
    base = f"/{API_VERSION}/Accounts/{leg.account_sid}/Calls/{leg.call_sid}"
    start = leg.started_at
    end = start + timedelta(seconds=leg.duration_s) if start else None
    answered = info.status == "completed"
    return {
        "account_sid": leg.account_sid, "answered_by": None, "api_version": API_VERSION,
        "caller_name": None,
        "date_created": format_datetime(start) if start else None,
        "date_updated": format_datetime(end) if end else None,
        "direction": info.direction,
        "duration": str(leg.duration_s) if answered else None,
        "end_time": format_datetime(end) if end else None,
        "forwarded_from": None, "from": info.from_, "from_formatted": info.from_,
        "group_sid": None, "parent_call_sid": info.parent_call_sid,
        "phone_number_sid": None, "price": None, "price_unit": "USD",
        "queue_time": "0", "sid": leg.call_sid,
        "start_time": format_datetime(start) if start else None,
        "status": info.status,
        "subresource_uris": {name: f"{base}/{name.title()}.json"
                             for name in ("notifications", "recordings", "events")},
        "to": info.to, "to_formatted": info.to, "trunk_sid": None,
        "uri": f"{base}.json",
    }


@calls_api.get("/v1/Voice/<call_sid>/Summary")
def fetch_summary(call_sid: str) -> Response:
    state = _state()
    owner = authenticate()
    if owner is None:
        return unauthorized()
    wanted = request.args.get("ProcessingState", "complete")
    if wanted not in ("complete", "partial"):
        return twilio_error(400, 20001, "Invalid ProcessingState: complete or partial")
    found = state.lookup(call_sid) if CALL_SID_RE.match(call_sid) else None
    if found is None or found[0].account_sid != owner:
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    fault = state.draw_fault()
    if fault is not None:
        return fault_error(fault, None, "legacy")
    record, registered_at = found
    complete = state.clock() - registered_at >= record.faults.summary_complete_after_s
    if wanted == "complete" and not complete:
        return twilio_error(404, 17001, "Requested resource is not ready yet")
    return jsonify(_summary(record, "complete" if complete else "partial",
                            request.host_url.rstrip("/")))


def _summary(record: CallRecord, processing_state: str, host: str) -> dict[str, Any]:
    """``insights.v1.call.summary``: the call's gateway edge with its tags (the metrics
    Twilio would show too are left out: callwatch reads only the tags)."""
    edge = DEFAULT_EDGE[record.call_type]
    start = record.started_at
    edge_object = {"properties": {"direction": "inbound", "media_region": "us1",
                                  "edge_location": "ashburn"},
                   "metrics": {"inbound": {"tags": list(record.summary_tags)},
                               "outbound": {"tags": []}},
                   "tags": list(record.summary_tags)}
    info = record.leg
    return {
        "account_sid": record.account_sid, "call_sid": record.call_sid,
        "call_type": _SUMMARY_CALL_TYPE[record.call_type],
        "call_state": _SUMMARY_STATE.get(info.status, "completed"),
        "answered_by": "unknown", "processing_state": processing_state,
        "created_time": start.strftime("%Y-%m-%dT%H:%M:%SZ") if start else None,
        "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ") if start else None,
        "end_time": None, "duration": record.duration_s, "connect_duration": record.duration_s,
        "from": {"caller": info.from_}, "to": {"callee": info.to},
        "carrier_edge": edge_object if edge == "carrier_edge" else None,
        "client_edge": None, "sdk_edge": None,
        "sip_edge": edge_object if edge == "sip_edge" else None,
        "tags": list(record.summary_tags), "attributes": {}, "properties": {},
        "trust": None, "annotation": None,
        "url": f"{host}/v1/Voice/{record.call_sid}/Summary",
    }
