"""The simulated ``GET /v1/Voice/{CallSid}/Events`` (Twilio's ``ListEvent``).

Behaves as reference/twilio.md section 3 and the OpenAPI description say: HTTP
Basic auth (account SID + auth token, or an API key), the ``Edge`` filter with the
call type's default edge, ``PageSize`` 1..1000 (default 50), ``Page`` and
``PageToken`` paging with the spec's ``meta`` block and absolute URLs on the
simulator's own host.

Choices where Twilio's behaviour is undocumented: a malformed CallSid and an unknown
CallSid both answer 404 with code 20404 (Twilio's router matches the path pattern,
so a malformed SID finds no resource); bad query parameters answer 400 with code
20001. Error bodies are Twilio's legacy shape ``{code, message, more_info, status}``
or, for calls registered with ``error_format: rfc9457``, an RFC 9457 problem.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, jsonify, request

from devtools.simulator.scenarios import DEFAULT_EDGE, CallRecord
from devtools.simulator.state import SimulatorState
from service.calls import CALL_SID_RE

EDGES = ("unknown_edge", "carrier_edge", "sip_edge", "sdk_edge", "client_edge")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
_TOKEN_RE = re.compile(r"^PT(\d{1,9})$")
_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}
_CODES = {429: 20429, 500: 20500, 502: 20500, 503: 20503, 504: 20504}

events_api = Blueprint("events_api", __name__)


def _state() -> SimulatorState:
    state: SimulatorState = current_app.extensions["simulator"]
    return state


def twilio_error(status: int, code: int, message: str, *, fmt: str = "legacy",
                 headers: dict[str, str] | None = None) -> Response:
    """A Twilio error answer in either body shape."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    if fmt == "rfc9457":
        body: dict[str, Any] = {"type": more_info, "title": _TITLES.get(status, "Error"),
                                "status": status, "code": code, "detail": message,
                                "instance": request.path}
        mimetype = "application/problem+json"
    else:
        body = {"code": code, "message": message, "more_info": more_info, "status": status}
        mimetype = "application/json"
    response = jsonify(body)
    response.status_code = status
    response.mimetype = mimetype
    response.headers.update(headers or {})
    return response


def log_request(response: Response, api: str) -> Response:
    """Log one request of a simulated Twilio API for ``GET /_sim/requests``: which API,
    what was asked, the answer's status, and who asked (a SID, never a secret)."""
    _state().log_request({
        "api": api,
        "method": request.method,
        "path": request.path,
        "query": request.query_string.decode("latin-1"),
        "params": request.args.to_dict(),
        "status": response.status_code,
        "auth": g.get("auth_kind"),
        "username": request.authorization.username if request.authorization else None,
        "call_sid": (request.view_args or {}).get("call_sid"),
    })
    return response


def authenticate() -> str | None:
    """The account whose resources the request's Basic credentials may read, else None
    (and ``g.auth_kind`` set for the log)."""
    state = _state()
    auth = request.authorization
    g.auth_kind = state.authenticate(auth.username if auth else None,
                                     auth.password if auth else None)
    return state.owner(auth.username if auth else None, g.auth_kind)


def unauthorized() -> Response:
    return twilio_error(401, 20003, "Authentication Error - invalid username",
                        headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})


@events_api.after_request
def _log(response: Response) -> Response:
    """Every Events API request goes to the log ``GET /_sim/requests`` shows."""
    return log_request(response, "events")


@events_api.get("/v1/Voice/<call_sid>/Events")
def list_events(call_sid: str) -> Response:
    state = _state()
    owner = authenticate()
    if owner is None:
        return unauthorized()
    if not CALL_SID_RE.match(call_sid):
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    query = _read_query()
    if isinstance(query, Response):
        return query
    fault = state.draw_fault()
    if fault is not None:
        return fault_error(fault, "1", "legacy")
    found = state.lookup(call_sid)
    if found is None or found[0].account_sid != owner:  # another account's call: not found
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    record, registered_at = found
    return _answer(state, record, registered_at, query)


def _answer(state: SimulatorState, record: CallRecord, registered_at: float,
            query: dict[str, Any]) -> Response:
    faults = record.faults
    if faults.delay_s:
        state.sleep(faults.delay_s)
    if faults.access_denied_code is not None:
        message = ("Voice Insights Advanced Features not enabled" if
                   faults.access_denied_code == 17007 else "Forbidden to access data")
        return twilio_error(401, faults.access_denied_code, message, fmt=faults.error_format)
    attempt = state.count_request(record.call_sid)
    if attempt <= faults.fail_first:
        return fault_error(faults.fail_status, faults.retry_after, faults.error_format)
    if state.clock() - registered_at < faults.ready_after_s:
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found",
                            fmt=faults.error_format)
    return jsonify(_page(record, query))


def fault_error(status: int, retry_after: str | None, fmt: str) -> Response:
    """A 429 (with ``Retry-After`` when given) or 5xx answer, as Twilio words them."""
    if status == 429:
        return twilio_error(429, 20429, "Too Many Requests", fmt=fmt,
                            headers={"Retry-After": retry_after} if retry_after else None)
    return twilio_error(status, _CODES.get(status, 20500), "Internal Server Error", fmt=fmt)


def _read_query() -> dict[str, Any] | Response:
    """Edge, PageSize, Page and PageToken, checked against the spec's bounds."""
    args = request.args
    edge = args.get("Edge")
    if edge is not None and edge not in EDGES:
        return twilio_error(400, 20001, f"Invalid Edge: must be one of {', '.join(EDGES)}")
    paging = read_paging()
    if isinstance(paging, Response):
        return paging
    size, page = paging
    token = args.get("PageToken")
    offset = page * size
    if token is not None:
        match = _TOKEN_RE.match(token)
        if match is None:
            return twilio_error(400, 20001, "Invalid PageToken")
        offset = int(match.group(1))
    return {"edge": edge, "page_size": size, "page": page, "offset": offset}


def read_paging() -> tuple[int, int] | Response:
    """``PageSize`` (1..1000, default 50) and ``Page`` (from 0), or the 400 answer."""
    size_text = request.args.get("PageSize", str(DEFAULT_PAGE_SIZE))
    if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
        return twilio_error(400, 20001, f"Invalid PageSize: must be 1 to {MAX_PAGE_SIZE}")
    page_text = request.args.get("Page", "0")
    if not page_text.isdigit() or len(page_text) > 9:
        return twilio_error(400, 20001, "Invalid Page: must be a whole number from 0")
    return int(size_text), int(page_text)


def _page(record: CallRecord, query: dict[str, Any]) -> dict[str, Any]:
    """One page of events with the spec's ``meta`` block."""
    edge: str | None = query["edge"]
    size, page, offset = query["page_size"], query["page"], query["offset"]
    events = record.events_on(edge or DEFAULT_EDGE[record.call_type])
    chunk = events[offset:offset + size]
    base = request.host_url.rstrip("/") + request.path

    def link(page_no: int, token_offset: int | None = None) -> str:
        params: list[tuple[str, Any]] = [("Edge", edge)] if edge else []
        params += [("PageSize", size), ("Page", page_no)]
        if token_offset is not None:
            params.append(("PageToken", f"PT{token_offset}"))
        return f"{base}?{urlencode(params)}"

    has_next = offset + size < len(events)
    has_previous = offset > 0
    return {
        "meta": {
            "page": page,
            "page_size": size,
            "first_page_url": link(0),
            "previous_page_url": (link(max(0, page - 1), max(0, offset - size))
                                  if has_previous else None),
            "next_page_url": link(page + 1, offset + size) if has_next else None,
            "key": "events",
            "url": link(page),
        },
        "events": chunk,
    }
