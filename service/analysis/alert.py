"""The alert: what callwatch tells a team about one call (the README's "Alerts").

``Alert.to_envelope()`` is the JSON body every webhook receiver gets
(``{"type": "call.alert", "timestamp": ..., "data": to_payload()}``); it is the
contract with them, so its shape changes only with ``schema_version``.
``Alert.from_envelope`` reads it back, which is how an alert travels as JSON from
the analysis job to each delivery job.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from service.analysis.headline import headline
from service.calls import Call
from service.insights.events import ClientInfo

SCHEMA_VERSION = 1
_T = TypeVar("_T")
#: The longest text taken from Twilio (an SDK message, client metadata, an identity) that
#: an alert keeps; longer ones are cut to this many characters, the last one ``…``.
MAX_TWILIO_TEXT = 1000


def cap_text(text: str | None, limit: int = MAX_TWILIO_TEXT) -> str | None:
    """``text`` if it has at most ``limit`` characters, else its start and ``…`` (``limit`` in all)."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _capped(value: _T) -> _T:
    """``value`` (an ``Issue``, a ``Call`` or a ``ClientInfo``) with every text field capped;
    the same object when nothing is too long (the common case costs one pass over the fields)."""
    long = {name: cap_text(text) for name, text in vars(value).items()
            if isinstance(text, str) and len(text) > MAX_TWILIO_TEXT}
    return dataclasses.replace(value, **long) if long else value  # type: ignore[type-var]


@dataclass(frozen=True)
class Issue:
    """One thing that went wrong: an edge/group/name (and error code) with its count."""

    key: str
    edge: str | None
    group: str | None
    name: str | None
    level: str
    severity: str  # "error" or "warning"
    count: int
    first_at: str | None = None
    last_at: str | None = None
    duration_s: float | None = None
    cleared: bool | None = None
    error_code: int | None = None
    description: str | None = None
    #: ``device``, ``network``, ``media``, ``auth``, ``outcome`` or ``other``.
    category: str | None = None
    #: The SDK's own message for the event (``sdk_edge.error.message``), when it sent one.
    sdk_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "edge": self.edge, "group": self.group, "name": self.name,
            "level": self.level, "severity": self.severity, "count": self.count,
            "first_at": self.first_at, "last_at": self.last_at,
            "duration_s": self.duration_s, "cleared": self.cleared,
            "error_code": self.error_code, "description": self.description,
            "category": self.category, "sdk_message": self.sdk_message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Issue:
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)


@dataclass(frozen=True)
class Alert:
    """One alert for one call and set of issues."""

    alert_id: str
    created_at: datetime
    call: Call
    issues: tuple[Issue, ...]
    client: ClientInfo | None = None
    truncated_issues: int = 0
    #: Counts every issue, the cut ones included; built from ``issues`` when not given.
    summary: str = ""
    severity: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc_seconds(self.created_at))
        # Twilio's texts are cut here, once, so no receiver gets a 2 MB city or SDK message.
        object.__setattr__(self, "call", _capped(self.call))
        object.__setattr__(self, "issues", tuple(_capped(issue) for issue in self.issues))
        if self.client is not None:
            object.__setattr__(self, "client", _capped(self.client))
        if len(self.summary) > MAX_TWILIO_TEXT:
            object.__setattr__(self, "summary", cap_text(self.summary))
        severity = "error" if any(i.severity == "error" for i in self.issues) else "warning"
        object.__setattr__(self, "severity", severity)
        if not self.summary:
            object.__setattr__(self, "summary", cap_text(summarize(self.call, self.issues)))

    def to_payload(self) -> dict[str, Any]:
        """The alert's ``data`` object, as the README documents it for receivers."""
        call = self.call
        return {
            "schema_version": SCHEMA_VERSION,
            "alert_id": self.alert_id,
            "severity": self.severity,
            "summary": self.summary,
            "call": call.to_json(),
            "issues": [issue.to_json() for issue in self.issues],
            "client": client_json(self.client),
            "truncated_issues": self.truncated_issues,
        }

    def to_envelope(self) -> dict[str, Any]:
        """The webhook body: event type, creation time and the payload."""
        return {"type": "call.alert", "timestamp": iso(self.created_at), "data": self.to_payload()}

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> Alert:
        """Read back what ``to_envelope`` wrote."""
        created_at = datetime.fromisoformat(envelope["timestamp"].replace("Z", "+00:00"))
        return cls.from_payload(envelope["data"], created_at=created_at)

    @classmethod
    def from_payload(cls, data: dict[str, Any], *, created_at: datetime) -> Alert:
        call = data["call"]
        client = data.get("client")
        return cls(
            alert_id=data["alert_id"],
            created_at=created_at,
            call=Call.from_json(call),
            issues=tuple(Issue.from_json(i) for i in data["issues"]),
            client=client_from_json(client) if client else None,
            truncated_issues=int(data.get("truncated_issues", 0)),
            summary=str(data.get("summary") or ""),
        )


def make_alert_id(call_sid: str, issue_keys: Iterable[str]) -> str:
    """Stable id: the same call with the same issue keys always gives the same id.

    Only the keys count: descriptions, categories and SDK messages may be reworded
    without giving an already-alerted call a new id.
    """
    material = call_sid + "\n" + "\n".join(sorted(set(issue_keys)))
    digest = hashlib.sha256(material.encode()).digest()[:15]
    return "alr_" + base64.b32encode(digest).decode().lower()


def summarize(call: Call, issues: Iterable[Issue]) -> str:
    """One line, who and what first (``service.analysis.headline``), then the counts:
    ``alice → +1*******23: …hung up with an error (31005); 1 error, 2 warnings on CA…
    (completed, 42 s)``; pass every issue, including any the alert leaves out."""
    issues = list(issues)
    return f"{headline(call, issues)}; {count_line(call, issues)}"


def count_line(call: Call, issues: Iterable[Issue]) -> str:
    """``1 error, 2 warnings on CA… (completed, 42 s)``."""
    issues = list(issues)
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = len(issues) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    duration = f", {call.duration_s} s" if call.duration_s is not None else ""
    return f"{', '.join(parts) or 'no issues'} on {call.call_sid} ({call.status}{duration})"


def utc_seconds(moment: datetime) -> datetime:
    """The same instant in UTC, to the second (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def iso(moment: datetime | None) -> str | None:
    """UTC ISO-8601 to the second with a ``Z``, as the payload writes every time."""
    if moment is None:
        return None
    return utc_seconds(moment).isoformat().replace("+00:00", "Z")


def client_json(client: ClientInfo | None) -> dict[str, Any] | None:
    if client is None:
        return None
    return {
        "sdk": {"type": client.sdk_type, "version": client.sdk_version, "platform": client.platform},
        "os": {"name": client.os_name, "version": client.os_version},
        "device": {"model": client.device_model, "vendor": client.device_vendor},
        "location": {"city": client.city, "country_code": client.country_code},
    }


def client_from_json(data: dict[str, Any]) -> ClientInfo:
    sdk, os_ = data.get("sdk") or {}, data.get("os") or {}
    device, location = data.get("device") or {}, data.get("location") or {}
    return ClientInfo(
        sdk_type=sdk.get("type"), sdk_version=sdk.get("version"), platform=sdk.get("platform"),
        os_name=os_.get("name"), os_version=os_.get("version"),
        device_model=device.get("model"), device_vendor=device.get("vendor"),
        city=location.get("city"), country_code=location.get("country_code"),
    )
