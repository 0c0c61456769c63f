"""The Voice Insights event model, read leniently from the Events API.

Every field of an event is nullable in Twilio's schema (``insights.v1.call.event``)
and new groups, names, edges and levels appear over time, so parsing keeps
whatever it does not know and never rejects an event for a missing field. Extra
keys are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

LEVEL_ORDER = {"UNKNOWN": 0, "DEBUG": 1, "INFO": 2, "WARNING": 3, "ERROR": 4}


@dataclass(frozen=True)
class ClientInfo:
    """What the SDK said about the device: ``sdk_edge.metadata``. Every field optional."""

    sdk_type: str | None = None
    sdk_version: str | None = None
    platform: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    device_model: str | None = None
    device_vendor: str | None = None
    city: str | None = None
    country_code: str | None = None

    @property
    def is_empty(self) -> bool:
        values = list(self.__dict__.values())
        return values.count(None) == len(values)


@dataclass(frozen=True)
class Event:
    """One event of ``GET /v1/Voice/{CallSid}/Events``."""

    timestamp: datetime | None
    call_sid: str | None
    account_sid: str | None
    edge: str | None
    group: str | None
    name: str | None
    level: str | None
    error_code: int | None = None
    error_message: str | None = None
    client: ClientInfo | None = None
    #: A quality warning's threshold and measured values (``sdk_edge.metric``).
    threshold: float | None = None
    values: tuple[float, ...] = ()
    #: A ConversationRelay latency event's ``latency_ms``.
    latency_ms: float | None = None

    @property
    def level_rank(self) -> int:
        """Order of severity; unknown or missing levels rank with UNKNOWN."""
        return LEVEL_ORDER.get((self.level or "UNKNOWN").upper(), 0)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 as Insights writes it (``2019-09-19T22:15:23Z``); None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_event(raw: Mapping[str, Any]) -> Event:
    """Read one event; tolerate nulls, missing keys and unknown values."""
    edge = _text(raw.get("edge"))
    error_code: int | None = None
    error_message: str | None = None
    client: ClientInfo | None = None
    threshold: float | None = None
    values: tuple[float, ...] = ()
    sdk = raw.get("sdk_edge")
    if isinstance(sdk, Mapping):
        error = sdk.get("error")
        if isinstance(error, Mapping):
            error_code = _int(error.get("code"))
            error_message = _text(error.get("message"))
        metadata = sdk.get("metadata")
        if isinstance(metadata, Mapping):
            client = _client_info(metadata)
        threshold, values = _metric(sdk)
    latency_ms: float | None = None
    group = _text(raw.get("group"))
    if group == RELAY_GROUP:
        latency_ms, error_code, error_message = _relay_payload(raw)
    level = _text(raw.get("level"))
    return Event(
        timestamp=parse_timestamp(raw.get("timestamp")),
        call_sid=_text(raw.get("call_sid")),
        account_sid=_text(raw.get("account_sid")),
        edge=edge,
        group=group,
        name=_text(raw.get("name")),
        level=level.upper() if level else None,
        error_code=error_code,
        error_message=error_message,
        client=client,
        threshold=threshold,
        values=values,
        latency_ms=latency_ms,
    )


#: The group of ConversationRelay (voice AI agent) events; their ``edge`` is null.
RELAY_GROUP = "conversation_relay"
#: Where a ConversationRelay event's payload may sit. Twilio documents the payload's
#: fields (``session_id``, ``sequence_number``, ``latency_ms``...) but its example page
#: shows none, so the first of these objects found is read, else the event itself.
_RELAY_PAYLOAD_KEYS = ("conversation_relay", "payload", "properties", "data")


def _relay_payload(raw: Mapping[str, Any]) -> tuple[float | None, int | None, str | None]:
    """``latency_ms``, an error code and a message from a ConversationRelay event."""
    payload: Mapping[str, Any] = raw
    for key in _RELAY_PAYLOAD_KEYS:
        if isinstance(raw.get(key), Mapping):
            payload = raw[key]
            break
    latency = _number(payload.get("latency_ms"))
    code = _int(payload.get("error_code")) or _int(payload.get("code"))
    message = (_text(payload.get("description")) or _text(payload.get("message"))
               or _text(payload.get("error_message")))
    return latency, code, message[:500] if message else None


def parse_events(raws: Iterable[Any]) -> list[Event]:
    """Read a page's ``events`` list, skipping entries that are not JSON objects."""
    return [parse_event(raw) for raw in raws if isinstance(raw, Mapping)]


def _client_info(metadata: Mapping[str, Any]) -> ClientInfo | None:
    sdk = _mapping(metadata.get("sdk"))
    os_ = _mapping(sdk.get("os")) or _mapping(metadata.get("os"))
    device = _mapping(sdk.get("device")) or _mapping(metadata.get("device"))
    location = _mapping(metadata.get("location"))
    info = ClientInfo(
        sdk_type=_text(sdk.get("type")),
        sdk_version=_text(sdk.get("version")),
        platform=_text(sdk.get("platform")),
        os_name=_text(os_.get("name")),
        os_version=_text(os_.get("version")),
        device_model=_text(device.get("model")),
        device_vendor=_text(device.get("vendor")),
        city=_text(metadata.get("city")) or _text(location.get("city")),
        country_code=_text(metadata.get("country_code")) or _text(location.get("country_code")),
    )
    return None if info.is_empty else info


def _metric(sdk: Mapping[str, Any]) -> tuple[float | None, tuple[float, ...]]:
    """``{threshold, value|values}`` from ``sdk_edge.metric`` (Twilio's Event Streams
    example), else from ``sdk_edge.data`` (the SDK's own payload key)."""
    for key in ("metric", "data"):
        metric = sdk.get(key)
        if not isinstance(metric, Mapping):
            continue
        raw_values = metric.get("values")
        if not isinstance(raw_values, list):
            raw_values = [metric.get("value")]
        values = tuple(v for v in (_number(x) for x in raw_values[:50]) if v is not None)
        threshold = _number(metric.get("threshold"))
        if threshold is not None or values:
            return threshold, values
    return None, ()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None
