"""The call a status callback describes: identifiers, statuses, and the ``Call`` value.

``Call`` is what travels from the web edge to the analysis job (as JSON) and ends up
in the alert's ``call`` block. Phone numbers are kept whole here (receivers need
them) but are masked with ``mask_number`` wherever they could reach a log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import InvalidField

#: Where Twilio posts a call's status callbacks (the route, and what PUBLIC_BASE_URL must not end with).
CALLBACK_PATH = "/twilio/status-callback"
CALL_SID_RE = re.compile(r"^CA[0-9a-fA-F]{32}\Z")
ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}\Z")

#: Every ``CallStatus`` Twilio sends.
CALL_STATUSES = frozenset(
    {"queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
     "no-answer", "canceled"}
)
#: Statuses after which the call is over and its analysis can be scheduled.
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class Call:
    """One call leg as its terminal status callback described it."""

    call_sid: str
    account_sid: str
    status: str
    direction: str | None = None
    from_: str | None = None
    to: str | None = None
    duration_s: int | None = None
    parent_call_sid: str | None = None
    sip_response_code: int | None = None
    timestamp: str | None = None
    sequence_number: int | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_json(self) -> dict[str, Any]:
        """The call's one JSON shape, every field, the caller under ``from``: what the intake
        stores, the analysis job carries and the alert's ``call`` block shows. ``from_json``
        reads it back. (Spelled out: ``asdict``'s deep copy is slow on the callback route.)"""
        return {
            "call_sid": self.call_sid, "account_sid": self.account_sid, "status": self.status,
            "direction": self.direction, "from": self.from_, "to": self.to,
            "duration_s": self.duration_s, "parent_call_sid": self.parent_call_sid,
            "sip_response_code": self.sip_response_code, "timestamp": self.timestamp,
            "sequence_number": self.sequence_number,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Call:
        """Read ``to_json``'s shape; unknown keys are ignored, absent optional ones are None.
        The caller's older key ``from_`` (jobs queued before the shape was unified) is read too."""
        fields = {k: v for k, v in data.items() if k in _JSON_FIELDS}
        caller = data["from"] if "from" in data else data.get("from_")
        return cls(**fields, from_=caller)

    def log_fields(self) -> dict[str, Any]:
        """Fields safe to log: numbers masked, nothing secret."""
        return {
            "call_sid": self.call_sid,
            "status": self.status,
            "direction": self.direction,
            "from": mask_number(self.from_),
            "to": mask_number(self.to),
            "duration_s": self.duration_s,
            "parent_call_sid": self.parent_call_sid,
            "sequence_number": self.sequence_number,
        }


_JSON_FIELDS = frozenset(Call.__dataclass_fields__) - {"from_"}


#: How Twilio writes a Voice SDK identity in ``From`` and ``To``.
SDK_IDENTITY_PREFIX = "client:"


def has_sdk_party(call: Call) -> bool:
    """Whether the leg can carry Voice SDK events: ``From`` or ``To`` is a ``client:``
    identity. A leg with neither end known (no callback fields) is given the benefit
    of the doubt."""
    ends = [end for end in (call.from_, call.to) if end]
    return not ends or any(end.startswith(SDK_IDENTITY_PREFIX) for end in ends)


def mask_number(value: str | None) -> str | None:
    """Hide all but the country prefix and last two digits of a phone number.

    ``client:`` identities are not phone numbers and are kept, since they are what
    tells an operator which agent's device failed.
    """
    if value is None:
        return None
    if value.startswith("client:") or not any(ch.isdigit() for ch in value):
        return value
    digits = [ch for ch in value if ch.isdigit()]
    if len(digits) <= 4:
        return "*" * len(digits)
    prefix = "+" if value.startswith("+") else ""
    return f"{prefix}{digits[0]}{'*' * (len(digits) - 3)}{''.join(digits[-2:])}"


_MAX_TEXT = 256


def call_from_callback(params: Mapping[str, str]) -> Call:
    """Read a status callback's form fields into a ``Call``; ``InvalidField`` names a bad one.

    Only the fields an alert needs are read; Twilio adds parameters over time and
    the rest are ignored (they were still covered by the signature).
    """
    call_sid = _required(params, "CallSid")
    if not CALL_SID_RE.match(call_sid):
        raise InvalidField("CallSid", "CallSid must be CA followed by 32 hex digits")
    account_sid = _required(params, "AccountSid")
    if not ACCOUNT_SID_RE.match(account_sid):
        raise InvalidField("AccountSid", "AccountSid must be AC followed by 32 hex digits")
    status = _required(params, "CallStatus")
    if status not in CALL_STATUSES:
        raise InvalidField("CallStatus", f"CallStatus must be one of {', '.join(sorted(CALL_STATUSES))}")
    parent = _optional(params, "ParentCallSid")
    if parent is not None and not CALL_SID_RE.match(parent):
        raise InvalidField("ParentCallSid", "ParentCallSid must be CA followed by 32 hex digits")
    return Call(
        call_sid=call_sid,
        account_sid=account_sid,
        status=status,
        direction=_optional(params, "Direction"),
        from_=_optional(params, "From"),
        to=_optional(params, "To"),
        duration_s=_count(params, "CallDuration"),
        parent_call_sid=parent,
        sip_response_code=_count(params, "SipResponseCode"),
        timestamp=_optional(params, "Timestamp"),
        sequence_number=_count(params, "SequenceNumber"),
    )


def _optional(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > _MAX_TEXT:
        raise InvalidField(name, f"{name} is longer than {_MAX_TEXT} characters")
    return value


def _required(params: Mapping[str, str], name: str) -> str:
    value = _optional(params, name)
    if value is None:
        raise InvalidField(name, f"{name} is required")
    return value


def _count(params: Mapping[str, str], name: str) -> int | None:
    value = _optional(params, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise InvalidField(name, f"{name} must be a whole number")
    return int(value)
