"""Building blocks for simulated calls: a timeline of Insights events and typed options.

Events are shaped like the Events API's (``insights.v1.call.event`` and the spec's
example): ``sdk_edge`` events carry ``sdk_edge.metadata`` (client name, location,
SDK type/version/platform, OS, device), for errors ``sdk_edge.error.{code, message}``
and for quality warnings ``sdk_edge.metric.{threshold, value|values}``, where
Twilio's REST and Event Streams examples put them. The SDK-side sequences follow
what twilio-voice.js publishes (``lib/twilio/call.ts``): groups, names, levels and
order.
Gateway edges (``client_edge``, ``carrier_edge``, ``sip_edge``) carry call-progress
events with ``{edge}.metadata.edge_location``; their real names are undocumented, so
these are plausible stand-ins.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

#: Client devices a simulated call may come from, picked by the call's seed.
PROFILES: tuple[dict[str, Any], ...] = (
    {
        "client_name": "alice", "city": "Mountain View", "country_code": "US",
        "country_subdivision": "California", "ip_address": "203.0.113.24",
        "location": {"lat": 37.4192, "lon": -122.0574},
        "sdk": {"type": "twilio-voice-js", "version": "2.18.4", "platform": "browser",
                "selected_region": "gll", "edge_location": "ashburn",
                "os": {"name": "macOS", "version": "15.1"},
                "device": {"model": "Chrome 131", "type": "desktop", "vendor": "Google",
                           "arch": "arm64"}},
    },
    {
        "client_name": "bob", "city": "Dublin", "country_code": "IE",
        "country_subdivision": "Leinster", "ip_address": "198.51.100.7",
        "location": {"lat": 53.3498, "lon": -6.2603},
        "sdk": {"type": "twilio-voice-android", "version": "6.7.1", "platform": "android",
                "selected_region": "ie1", "edge_location": "dublin",
                "os": {"name": "android", "version": "14"},
                "device": {"model": "Pixel 8", "type": "shiba", "vendor": "Google",
                           "arch": "arm64-v8a"}},
    },
    {
        "client_name": "carol", "city": "Sydney", "country_code": "AU",
        "country_subdivision": "New South Wales", "ip_address": "192.0.2.31",
        "location": {"lat": -33.8688, "lon": 151.2093},
        "sdk": {"type": "twilio-voice-ios", "version": "6.12.0", "platform": "ios",
                "selected_region": "au1", "edge_location": "sydney",
                "os": {"name": "iOS", "version": "18.1"},
                "device": {"model": "iPhone15,2", "type": "iPhone", "vendor": "Apple",
                           "arch": "arm64"}},
    },
)


class Options:
    """A scenario's options, read with types and bounds; unknown names are an error."""

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        self._raw = dict(raw or {})
        self._used: set[str] = set()

    def number(self, name: str, default: float, *, low: float = 0, high: float = 86_400) -> float:
        self._used.add(name)
        value = self._raw.get(name, default)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not low <= value <= high:
            raise ValueError(f"option {name} must be a number from {low:g} to {high:g}")
        return float(value)

    def whole(self, name: str, default: int, *, low: int = 0, high: int = 1_000_000) -> int:
        self._used.add(name)
        value = self._raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"option {name} must be a whole number from {low} to {high}")
        return value

    def whole_choice(self, name: str, default: int, choices: tuple[int, ...]) -> int:
        value = self.whole(name, default, low=min(choices), high=max(choices))
        if value not in choices:
            raise ValueError(f"option {name} must be one of {', '.join(map(str, choices))}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        self._used.add(name)
        value = self._raw.get(name, default)
        if value not in choices:
            raise ValueError(f"option {name} must be one of {', '.join(choices)}")
        return str(value)

    def raw(self, name: str, default: Any) -> Any:
        """The option as given (JSON), unchecked: the scenario checks it."""
        self._used.add(name)
        return self._raw.get(name, default)

    def timestamp(self, name: str, default: datetime) -> datetime:
        self._used.add(name)
        value = self._raw.get(name)
        if value is None:
            return default
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"option {name} must be an ISO-8601 timestamp") from exc

    def check_all_used(self) -> None:
        unknown = sorted(set(self._raw) - self._used)
        if unknown:
            raise ValueError(f"unknown option(s) for this scenario: {', '.join(unknown)}")


class Timeline:
    """The events of one simulated call, added in any order, read back sorted by time."""

    def __init__(self, call_sid: str, account_sid: str, started_at: datetime,
                 duration_s: int, rng: random.Random) -> None:
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.started_at = started_at
        self.duration_s = duration_s
        self.rng = rng
        self.metadata = rng.choice(PROFILES)
        self._events: list[tuple[float, int, dict[str, Any]]] = []

    def sdk(self, at_s: float, group: str, name: str, level: str, *,
            error: int | None = None, message: str | None = None,
            metric: Mapping[str, Any] | None = None) -> None:
        """One Voice SDK event (``sdk_edge``)."""
        payload: dict[str, Any] = {"metadata": self.metadata}
        if error is not None:
            payload["error"] = {"code": error, "message": message or ""}
        if metric is not None:
            payload["metric"] = dict(metric)
        self._add(at_s, "sdk_edge", group, name, level, payload)

    def __len__(self) -> int:
        return len(self._events)

    def gateway(self, edge: str, at_s: float, group: str, name: str,
                level: str = "UNKNOWN") -> None:
        """One call-progress event from a Twilio media gateway edge."""
        location = self.metadata["sdk"]["edge_location"]
        payload = {"metadata": {"edge_location": location, "region": "us1"}}
        self._add(at_s, edge, group, name, level, payload)

    def relay(self, at_s: float, name: str, level: str | None,
              payload: Mapping[str, Any]) -> None:
        """One ConversationRelay event: group ``conversation_relay``, no edge, and (an
        unconfirmed placement) its payload under ``conversation_relay``."""
        self._add(at_s, None, "conversation_relay", name, level, dict(payload))

    def events(self) -> tuple[dict[str, Any], ...]:
        return tuple(event for _, _, event in sorted(self._events, key=lambda e: e[:2]))

    def _add(self, at_s: float, edge: str | None, group: str, name: str, level: str | None,
             payload: dict[str, Any]) -> None:
        at_s = min(max(at_s, 0.0), float(self.duration_s))
        when = self.started_at + timedelta(seconds=at_s)
        event: dict[str, Any] = {
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
            "call_sid": self.call_sid,
            "account_sid": self.account_sid,
            "edge": edge,
            "group": group,
            "name": name,
            "level": level,
            "carrier_edge": None,
            "sip_edge": None,
            "sdk_edge": None,
            "client_edge": None,
        }
        event[edge or group] = payload
        self._events.append((at_s, len(self._events), event))


def connect(tl: Timeline) -> float:
    """The INFO/DEBUG events of an outgoing call setting up normally; returns when media
    flowed. (The Call's constructor publishes ``outgoing``, ``accept`` then
    ``get-user-media``, the answer ``accepted-by-remote`` and ``settings/codec``.)"""
    tl.sdk(0.0, "connection", "outgoing", "INFO")
    tl.sdk(0.1, "get-user-media", "succeeded", "INFO")
    tl.sdk(0.3, "signaling-state", "have-local-offer", "DEBUG")
    tl.sdk(0.4, "ice-gathering-state", "gathering", "DEBUG")
    tl.sdk(0.5, "ice-candidate", "ice-candidate", "DEBUG")
    tl.sdk(0.7, "ice-gathering-state", "complete", "DEBUG")
    tl.sdk(0.8, "connection", "outgoing-ringing", "INFO")
    tl.sdk(1.2, "signaling-state", "stable", "DEBUG")
    tl.sdk(1.2, "connection", "accepted-by-remote", "INFO")
    tl.sdk(1.2, "settings", "codec", "INFO")
    tl.sdk(1.3, "ice-connection-state", "checking", "DEBUG")
    tl.sdk(1.4, "ice-connection-state", "connected", "DEBUG")
    tl.sdk(1.5, "pc-connection-state", "connected", "DEBUG")
    return 1.5


def hang_up(tl: Timeline) -> None:
    """The caller hangs up at the end of the call (``Call#disconnect``)."""
    tl.sdk(float(tl.duration_s), "connection", "disconnected-by-local", "INFO")


def gateway_progress(tl: Timeline, edge: str, *, answered: bool = True) -> None:
    """Call progress as a Twilio gateway edge reports it."""
    tl.gateway(edge, 0.0, "call", "initiated")
    tl.gateway(edge, 0.2, "call", "ringing")
    if answered:
        tl.gateway(edge, 1.5, "call", "answered")
    tl.gateway(edge, float(tl.duration_s), "call", "completed" if answered else "failed")
