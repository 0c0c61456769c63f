"""Incident events: ``incident.opened``, ``incident.updated``, ``incident.resolved``.

The envelope every webhook receiver gets is ``{"type", "timestamp", "data"}`` with the
``data`` of the contract (DESIGN.md, "Storms become incidents"); its ``webhook-id`` is
``<incident_id>:<sequence>``. Between the steps an event travels as that envelope
plus a ``webhook_id`` member, which ``to_envelope`` leaves out of what is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.analysis.alert import iso
from service.delivery.incidents.store import Snapshot

SCHEMA_VERSION = 1
EVENT_TYPES = ("incident.opened", "incident.updated", "incident.resolved")


def is_incident_message(message: dict[str, Any]) -> bool:
    """True for an incident event, False for a ``call.alert`` envelope."""
    return str(message.get("type", "")).startswith("incident.")


def message_id(message: dict[str, Any]) -> str:
    """The ``webhook-id`` of a message: the alert id, or ``<incident_id>:<sequence>``."""
    if is_incident_message(message):
        return str(message["webhook_id"])
    return str(message["data"]["alert_id"])


@dataclass(frozen=True)
class IncidentEvent:
    """One incident event: its type, when it was built, its ``webhook-id`` and ``data``."""

    type: str
    timestamp: str
    webhook_id: str
    data: dict[str, Any]

    @property
    def incident_id(self) -> str:
        return str(self.data["incident_id"])

    @property
    def sequence(self) -> int:
        return int(self.webhook_id.rsplit(":", 1)[1])

    @property
    def event(self) -> str:
        """``opened``, ``updated`` or ``resolved``."""
        return self.type.removeprefix("incident.")

    @property
    def previous_id(self) -> str | None:
        """The ``webhook-id`` of the event before this one (None for ``opened``)."""
        return f"{self.incident_id}:{self.sequence - 1}" if self.sequence > 1 else None

    def to_envelope(self) -> dict[str, Any]:
        """The webhook body."""
        return {"type": self.type, "timestamp": self.timestamp, "data": self.data}

    def to_message(self) -> dict[str, Any]:
        """What a delivery job carries: the envelope and its ``webhook-id``."""
        return {**self.to_envelope(), "webhook_id": self.webhook_id}

    def body(self) -> bytes:
        """The envelope serialised once, compact and ASCII (what a signature covers)."""
        return json.dumps(self.to_envelope(), separators=(",", ":"), ensure_ascii=True).encode()

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> IncidentEvent:
        if message.get("type") not in EVENT_TYPES:
            raise ValueError(f"not an incident event: {message.get('type')!r}")
        return cls(str(message["type"]), str(message["timestamp"]), str(message["webhook_id"]),
                   dict(message["data"]))


def build_event(event: str, sequence: int, snapshot: Snapshot, now: datetime) -> IncidentEvent:
    """The event ``event`` (``opened``, ``updated``, ``resolved``) of an incident's state."""
    fields = snapshot.fields
    trigger = fields.get("trigger", "storm")
    ratio = None
    if trigger == "ratio":
        ratio = {"analysed": int(snapshot.number("ratio_analysed")),
                 "with_alert": int(snapshot.number("ratio_with_alert")),
                 "percent": round(snapshot.number("ratio_percent"), 2)}
    data = {
        "schema_version": SCHEMA_VERSION,
        "incident_id": snapshot.incident_id,
        "route": fields.get("route"),
        "group": json.loads(fields.get("group") or "{}"),
        "trigger": trigger,
        "status": fields.get("status", "open"),
        "opened_at": _iso(snapshot.number("opened_at", 0) or None),
        "updated_at": _iso(snapshot.number("updated_at", 0) or None),
        "resolved_at": _iso(snapshot.number("resolved_at", 0) or None),
        "calls": int(snapshot.number("calls")),
        "calls_since_last": snapshot.calls_since_last,
        "by_issue": snapshot.counts("issue"),
        "by_error_code": {k: v for k, v in snapshot.counts("error_code").items() if k != "none"},
        "by_sdk": {k: v for k, v in snapshot.counts("sdk").items() if k != "none"},
        "by_country": {k: v for k, v in snapshot.counts("country").items() if k != "none"},
        "sample_call_sids": list(snapshot.samples[:20]),
        "ratio": ratio,
        #: Who acknowledged it (from Slack), else null: added in schema version 1.
        "acknowledged_by": fields.get("acknowledged_by") or None,
    }
    return IncidentEvent(f"incident.{event}", iso(now) or "", f"{snapshot.incident_id}:{sequence}",
                         data)


def _iso(epoch: float | None) -> str | None:
    return iso(datetime.fromtimestamp(epoch, UTC)) if epoch else None
