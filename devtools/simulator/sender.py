"""Status callbacks the way Twilio sends them: realistic form fields, signed.

``play_call`` is the whole thing in one step: register a call of some scenario in
the simulator, then post a signed callback for each status, so callwatch sees what
it would see from Twilio (reference/twilio.md sections 1 and 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import requests
from twilio.request_validator import RequestValidator

from service.calls import CALLBACK_PATH

DEFAULT_STATUSES = ("initiated", "ringing", "in-progress", "completed")
TIMEOUT = (3.05, 10.0)


def sign(url: str, params: Mapping[str, str] | None, auth_token: str) -> str:
    """``X-Twilio-Signature`` for a request to ``url`` with form ``params`` (none for GET)."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params or {})))


def callback_params(call_sid: str, account_sid: str, status: str, **extra: Any) -> dict[str, str]:
    """The form fields Twilio posts for a Voice SDK call's status; ``extra`` adds or overrides.

    ``CallDuration`` (seconds) is only sent for ``completed``; pass
    ``CallDuration=...`` to set it, or ``None`` as a value to drop a field.
    """
    params: dict[str, Any] = {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": "client:alice",
        "To": "+14155550123",
        "CallStatus": status,
        "ApiVersion": "2010-04-01",
        "Direction": "outbound-api",
        "Timestamp": format_datetime(datetime.now(UTC)),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
    }
    if status == "completed":
        params["CallDuration"] = "42"
    params.update(extra)
    return {name: str(value) for name, value in params.items() if value is not None}


def send_status_callback(callwatch_url: str, params: Mapping[str, str], auth_token: str, *,
                         method: str = "POST",
                         session: requests.Session | None = None) -> requests.Response:
    """Send one signed status callback to ``callwatch_url`` (the full callback URL).

    The signature covers the URL exactly as it goes on the wire (requests
    re-quotes it), which is what Twilio signs and callwatch checks.
    """
    http = session or requests.Session()
    try:
        if method.upper() == "GET":
            request = requests.Request("GET", callwatch_url, params=list(params.items()))
            prepared = http.prepare_request(request)
            prepared.headers["X-Twilio-Signature"] = sign(str(prepared.url), None, auth_token)
        else:
            request = requests.Request("POST", callwatch_url, data=dict(params))
            prepared = http.prepare_request(request)
            prepared.headers["X-Twilio-Signature"] = sign(str(prepared.url), params, auth_token)
        return http.send(prepared, timeout=TIMEOUT)
    finally:
        if session is None:
            http.close()


#: ``play_call`` options that shape the callbacks rather than the simulated events.
CALLBACK_OPTIONS = {"sip_response_code": "SipResponseCode", "direction": "Direction",
                    "from": "From", "to": "To"}


def play_call(simulator_url: str, callwatch_url: str, account_sid: str, auth_token: str,
              scenario: str, options: Mapping[str, Any] | None = None,
              statuses: Sequence[str] = DEFAULT_STATUSES, *,
              session: requests.Session | None = None) -> str:
    """Register a ``scenario`` call in the simulator, then send its signed callbacks.

    ``callwatch_url`` is callwatch's base URL (``/twilio/status-callback`` is added
    unless it is already there). ``options`` go to the scenario, except
    ``sip_response_code`` (sent as ``SipResponseCode`` on the last callback),
    ``direction``, ``from`` and ``to`` (callback fields); ``duration_s`` is both
    the events' span and ``CallDuration``. A multi-leg scenario (``inbound-to-agent``...)
    gives its leg's own ``From``, ``To`` and ``Direction``. Raises ``requests.HTTPError`` when the
    simulator or callwatch refuses a request, so a misconfigured run fails loudly.
    Returns the call's SID.
    """
    scenario_options = {k: v for k, v in (options or {}).items() if k not in CALLBACK_OPTIONS}
    fields = {CALLBACK_OPTIONS[k]: v for k, v in (options or {}).items() if k in CALLBACK_OPTIONS}
    sip_code = fields.pop("SipResponseCode", None)
    http = session or requests.Session()
    try:
        response = http.post(f"{simulator_url.rstrip('/')}/_sim/calls", timeout=TIMEOUT,
                             json={"scenario": scenario, "options": scenario_options})
        response.raise_for_status()
        registered = response.json()
        call_sid = str(registered["call_sid"])
        for key in ("from", "to", "direction"):  # a multi-leg scenario's own parties
            if key in registered and CALLBACK_OPTIONS[key] not in fields:
                fields[CALLBACK_OPTIONS[key]] = registered[key]
        url = callwatch_url.rstrip("/")
        if not url.endswith(CALLBACK_PATH):
            url += CALLBACK_PATH
        for number, status in enumerate(statuses):
            extra: dict[str, Any] = {**fields, "SequenceNumber": str(number)}
            if status == "completed":
                extra["CallDuration"] = str(scenario_options.get("duration_s", 42))
            if sip_code is not None and number == len(statuses) - 1:
                extra["SipResponseCode"] = str(sip_code)
            params = callback_params(call_sid, account_sid, status, **extra)
            send_status_callback(url, params, auth_token, session=http).raise_for_status()
        return call_sid
    finally:
        if session is None:
            http.close()
