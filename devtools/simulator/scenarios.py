"""Named, deterministic simulated calls: each scenario turns options into a ``CallRecord``.

A record holds the call's type (which decides the default edge), its events on
every edge, and the faults the Events API shows for it. The same call SID, start
time and options always give the same events (the random choices are seeded from
the call SID unless ``seed`` is given).

Options every scenario takes: ``call_type`` (client, carrier, sip,
trunking_originating, trunking_terminating; SDK events exist only for client
calls), ``duration_s``, ``started_at`` (ISO-8601; default: the call just ended),
``seed`` and ``error_format`` (``legacy`` or ``rfc9457`` Twilio error bodies).
Fault scenarios also take ``events``: the event scenario whose events they serve
once the fault has passed (default ``clean``).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devtools.simulator.timeline import Options, Timeline, connect, gateway_progress, hang_up

#: The edge the Events API returns when ``Edge`` is absent (reference/twilio.md 3.1).
DEFAULT_EDGE = {
    "client": "sdk_edge",
    "carrier": "carrier_edge",
    "sip": "sip_edge",
    "trunking_originating": "carrier_edge",
    "trunking_terminating": "sip_edge",
}
#: Gateway edges that report call progress for each call type.
GATEWAY_EDGES = {
    "client": ("client_edge",),
    "carrier": ("carrier_edge",),
    "sip": ("sip_edge",),
    "trunking_originating": ("carrier_edge", "sip_edge"),
    "trunking_terminating": ("sip_edge", "carrier_edge"),
}
ERROR_FORMATS = ("legacy", "rfc9457")


@dataclass(frozen=True)
class Faults:
    """How the Events API misbehaves for one call."""

    ready_after_s: float = 0.0          # 404 (20404) until this long after registration
    access_denied_code: int | None = None  # 401 with this Twilio code (17000, 17007)
    fail_first: int = 0                 # the first N Events requests fail ...
    fail_status: int = 500              # ... with this status
    retry_after: str | None = None      # ... and this Retry-After header
    delay_s: float = 0.0                # every answer waits this long
    error_format: str = "legacy"        # Twilio error body shape
    summary_complete_after_s: float = 0.0  # the Call Summary is partial until then


@dataclass(frozen=True)
class LegInfo:
    """Who a leg connects and how it ended, as the Calls API and the callbacks say it."""

    from_: str = "client:alice"
    to: str = "+14155550123"
    direction: str = "outbound-api"
    status: str = "completed"
    parent_call_sid: str | None = None


@dataclass(frozen=True)
class CallRecord:
    """One simulated call as the Events API serves it."""

    call_sid: str
    account_sid: str
    scenario: str
    call_type: str
    duration_s: int
    events: tuple[dict[str, Any], ...]
    faults: Faults = field(default_factory=Faults)
    #: The leg as the Calls API lists it (``api.v2010.account.call``).
    leg: LegInfo = field(default_factory=lambda: LegInfo())
    #: Legs this call's ``<Dial>`` created (served by the Calls API under ``ParentCallSid``).
    children: tuple[CallRecord, ...] = ()
    #: Voice Insights tags of the call's gateway edge, served by the Call Summary.
    summary_tags: tuple[str, ...] = ()
    started_at: datetime | None = None

    @property
    def default_edge(self) -> str:
        return DEFAULT_EDGE[self.call_type]

    def events_on(self, edge: str) -> list[dict[str, Any]]:
        """The events on ``edge``; events with no edge (ConversationRelay's) are served
        with the call's default edge, as Twilio's example page lists them unfiltered."""
        return [event for event in self.events if event.get("edge") == edge
                or (event.get("edge") is None and edge == self.default_edge)]


@dataclass(frozen=True)
class ScenarioInput:
    """What a scenario is built from: who the call is, when it is, and its options."""

    call_sid: str
    account_sid: str
    now: datetime
    options: Mapping[str, Any] = field(default_factory=dict)


EventBuilder = Callable[[Timeline, Options], None]
Scenario = Callable[[ScenarioInput], CallRecord]


# --- event scenarios: what happened on the caller's device ---------------------------
# Each follows what twilio-voice.js publishes (lib/twilio/call.ts): which events, in
# which order, at which level, with which error code and message.

#: Messages as the SDK's error classes build them (``Name (code): message``).
MEDIA_RECONNECTING = "ConnectionError (53405): Media connection failed."
MEDIA_GIVEN_UP = ("ConnectionError (53405): Raised by the Client or Server whenever a media "
                  "connection fails.")
GATEWAY_HANGUP = "ConnectionError (31005): Error sent from gateway in HANGUP"
PERMISSION_DENIED = ("PermissionDeniedError (31401): The browser or end-user denied "
                     "permissions to user media. Therefore we were unable to acquire input audio.")


def _clean(tl: Timeline, opts: Options) -> None:
    connect(tl)
    hang_up(tl)


def _sdk_error(tl: Timeline, opts: Options) -> None:
    """The gateway hangs up with an error: ``_onHangup`` emits 31005, then the remote end."""
    code = opts.whole("code", 31005, low=10000, high=99999)  # another code: another issue
    up = connect(tl)
    at = up + (tl.duration_s - up) * 0.6
    tl.sdk(at, "connection", "error", "ERROR", error=code, message=GATEWAY_HANGUP)
    tl.sdk(at, "connection", "disconnected-by-remote", "INFO")


def _ice_drop(tl: Timeline, at: float) -> None:
    """ICE goes to disconnected: ``ondisconnected`` raises ice-connectivity-lost."""
    tl.sdk(at, "ice-connection-state", "disconnected", "DEBUG")
    tl.sdk(at, "network-quality-warning-raised", "ice-connectivity-lost", "WARNING")
    tl.sdk(at + 0.1, "pc-connection-state", "disconnected", "DEBUG")


def _ice_failure(tl: Timeline, opts: Options) -> None:
    """ICE fails mid-call; Chrome's ICE restarts fail too, and after their 30 s budget
    ``MEDIA_DISCONNECT_ERROR`` disconnects the call, then emits the 53405 error."""
    up = connect(tl)
    end = float(tl.duration_s)
    drop = up + (end - up) * 0.1
    failed = drop + min(5.0, (end - drop) / 4)
    _ice_drop(tl, drop)
    tl.sdk(failed, "ice-connection-state", "failed", "ERROR")
    tl.sdk(failed, "connection", "error", "WARNING", error=53405, message=MEDIA_RECONNECTING)
    tl.sdk(failed, "connection", "reconnecting", "INFO")
    tl.sdk(failed + 0.1, "pc-connection-state", "failed", "WARNING")
    for retry in (0.3, 0.6):
        at = failed + (end - failed) * retry
        tl.sdk(at, "ice-connection-state", "checking", "DEBUG")
        tl.sdk(at + (end - failed) * 0.2, "ice-connection-state", "failed", "ERROR")
    tl.sdk(end, "connection", "disconnected-by-local", "INFO")
    tl.sdk(end, "connection", "error", "ERROR", error=53405, message=MEDIA_GIVEN_UP)


def _ice_reconnected(tl: Timeline, opts: Options) -> None:
    """A media drop the SDK recovers from: low bytes while ICE is disconnected start a
    reconnection (53405 at WARNING before ``reconnecting``); the ICE restart works."""
    up = connect(tl)
    drop = up + (tl.duration_s - up) * 0.4
    _ice_drop(tl, drop)
    tl.sdk(drop + 3, "connection", "error", "WARNING", error=53405, message=MEDIA_RECONNECTING)
    tl.sdk(drop + 3, "connection", "reconnecting", "INFO")
    tl.sdk(drop + 3, "network-quality-warning-raised", "low-bytes-received", "WARNING",
           metric={"threshold": 1, "values": [0, 0, 0]})
    tl.sdk(drop + 4.2, "ice-connection-state", "checking", "DEBUG")
    tl.sdk(drop + 4.9, "ice-connection-state", "connected", "DEBUG")
    tl.sdk(drop + 4.9, "network-quality-warning-cleared", "ice-connectivity-lost", "INFO")
    tl.sdk(drop + 4.9, "connection", "reconnected", "INFO")
    tl.sdk(drop + 8.5, "network-quality-warning-cleared", "low-bytes-received", "INFO",
           metric={"threshold": 1, "values": [1820, 1790, 1805]})
    hang_up(tl)


def _mic_denied(tl: Timeline, opts: Options) -> None:
    """getUserMedia refused: the call disconnects itself, then emits the 31401 error."""
    tl.sdk(0.0, "connection", "outgoing", "INFO")
    tl.sdk(0.2, "get-user-media", "denied", "ERROR")
    tl.sdk(0.2, "connection", "disconnected-by-local", "INFO")
    tl.sdk(0.2, "connection", "error", "ERROR", error=31401, message=PERMISSION_DENIED)


def _ended_by_callee(code: int, message: str) -> EventBuilder:
    """The callee's answer as a precise signalling error (``_onHangup``, with
    ``enableImprovedSignalingErrorPrecision``), then the remote end."""
    def build(tl: Timeline, opts: Options) -> None:
        tl.sdk(0.0, "connection", "outgoing", "INFO")
        tl.sdk(0.1, "get-user-media", "succeeded", "INFO")
        tl.sdk(0.3, "signaling-state", "have-local-offer", "DEBUG")
        tl.sdk(0.8, "connection", "outgoing-ringing", "INFO")
        end = float(tl.duration_s)
        tl.sdk(end, "connection", "error", "ERROR", error=code, message=message)
        tl.sdk(end, "connection", "disconnected-by-remote", "INFO")
    return build


def _rtt(values: list[float]) -> dict[str, Any]:
    return {"threshold": 400, "values": values}


def _warning(tl: Timeline, at: float, name: str, cleared_at: float | None,
             metric: dict[str, Any], cleared_metric: dict[str, Any] | None = None,
             group: str = "network-quality-warning") -> None:
    tl.sdk(at, f"{group}-raised", name, "WARNING", metric=metric)
    if cleared_at is not None:
        tl.sdk(cleared_at, f"{group}-cleared", name, "INFO", metric=cleared_metric or metric)


def _warnings_cleared(tl: Timeline, opts: Options) -> None:
    """RTT above 400 ms twice and jitter above 30 ms once, each cleared (3 crossings in
    the last 10 samples raise a warning, none clear it)."""
    up = connect(tl)
    span = tl.duration_s - up
    calm = _rtt([212, 198, 220, 205, 199, 230, 211, 190, 202, 215])
    _warning(tl, up + span * 0.10, "high-rtt", up + span * 0.25,
             _rtt([380, 410, 455, 512, 420, 390, 401, 399, 430, 415]), calm)
    _warning(tl, up + span * 0.40, "high-rtt", up + span * 0.55,
             _rtt([350, 402, 468, 431, 388, 377, 366, 391, 405, 360]), calm)
    _warning(tl, up + span * 0.60, "high-jitter", up + span * 0.70,
             {"threshold": 30, "values": [22, 35, 41, 33, 28, 25, 31, 27, 24, 26]},
             {"threshold": 30, "values": [8, 9, 7, 10, 6, 9, 8, 7, 9, 8]})
    hang_up(tl)


def _warning_uncleared(tl: Timeline, opts: Options) -> None:
    """MOS below 3 until the end: the monitor stops with the call, so no -cleared."""
    up = connect(tl)
    _warning(tl, up + (tl.duration_s - up) * 0.5, "low-mos", None,
             {"threshold": 3, "values": [3.4, 2.9, 2.71, 2.6, 3.1, 2.8, 2.55, 3.0, 2.9, 2.62]})
    hang_up(tl)


def _many_events(tl: Timeline, opts: Options) -> None:
    count = opts.whole("count", 2500, low=20, high=100_000)
    connect(tl)
    hang_up(tl)
    filler = count - len(tl)
    up, end = 1.6, tl.duration_s - 0.3
    step = (end - up) / filler
    for i in range(filler):
        at = up + i * step
        if i % 500 == 250:
            tl.sdk(at, "network-quality-warning-raised", "high-packet-loss", "WARNING",
                   metric={"threshold": 1, "values": [round(1 + tl.rng.random() * 4, 2)]})
        elif i % 500 == 260:
            tl.sdk(at, "network-quality-warning-cleared", "high-packet-loss", "INFO")
        elif i % 3 == 0:
            tl.sdk(at, "network-information", "network-change", "INFO")
        else:
            tl.sdk(at, "ice-candidate", "ice-candidate", "DEBUG")


EVENT_SCENARIOS: dict[str, EventBuilder] = {
    "clean": _clean,
    "sdk-error": _sdk_error,
    "ice-failure": _ice_failure,
    "ice-reconnected": _ice_reconnected,
    "mic-denied": _mic_denied,
    "busy": _ended_by_callee(31486, "BusyHere (31486): Busy Here"),
    "declined": _ended_by_callee(31603, "Decline (31603): Decline"),
    "warnings-cleared": _warnings_cleared,
    "warning-uncleared": _warning_uncleared,
    "many-events": _many_events,
}


# --- building records ----------------------------------------------------------------

def _record(inp: ScenarioInput, name: str, opts: Options, builder: EventBuilder,
            faults: Callable[[Options, str], Faults] | None = None) -> CallRecord:
    call_type = opts.choice("call_type", "client", tuple(DEFAULT_EDGE))
    duration_s = opts.whole("duration_s", 42, low=1, high=86_400)
    started_at = opts.timestamp("started_at", inp.now - timedelta(seconds=duration_s))
    seed = opts.whole("seed", zlib.crc32(inp.call_sid.encode()), low=0, high=2**32)
    error_format = opts.choice("error_format", "legacy", ERROR_FORMATS)
    tl = Timeline(inp.call_sid, inp.account_sid, started_at, duration_s, random.Random(seed))  # noqa: S311
    if call_type == "client":
        builder(tl, opts)
    for edge in GATEWAY_EDGES[call_type]:
        gateway_progress(tl, edge)
    fault = faults(opts, error_format) if faults else Faults(error_format=error_format)
    opts.check_all_used()
    return CallRecord(call_sid=inp.call_sid, account_sid=inp.account_sid, scenario=name,
                      call_type=call_type, duration_s=duration_s, events=tl.events(),
                      faults=fault, leg=_default_leg(call_type), started_at=started_at)


def _default_leg(call_type: str) -> LegInfo:
    """An SDK call is the browser calling a phone; any other type is a phone-to-phone leg."""
    if call_type == "client":
        return LegInfo()
    return LegInfo(from_="+14155550100", to="+14155550123", direction="inbound")


def _event_scenario(name: str) -> Scenario:
    def build(inp: ScenarioInput) -> CallRecord:
        return _record(inp, name, Options(inp.options), EVENT_SCENARIOS[name])
    build.__doc__ = f"The {name!r} call: its events, served without faults."
    return build


def _fault_scenario(name: str, faults: Callable[[Options, str], Faults]) -> Scenario:
    def build(inp: ScenarioInput) -> CallRecord:
        opts = Options(inp.options)
        events = opts.choice("events", "clean", tuple(EVENT_SCENARIOS))
        return _record(inp, name, opts, EVENT_SCENARIOS[events], faults)
    build.__doc__ = f"A call whose events are served with the {name!r} fault."
    return build


def _late(opts: Options, fmt: str) -> Faults:
    return Faults(ready_after_s=opts.number("ready_after_s", 2.0), error_format=fmt)


def _denied(opts: Options, fmt: str) -> Faults:
    code = opts.whole_choice("code", 17007, (17000, 17007))
    return Faults(access_denied_code=code, error_format=fmt)


def _rate_limited(opts: Options, fmt: str) -> Faults:
    after = opts.whole("retry_after", 1, low=0, high=86_400)
    return Faults(fail_first=opts.whole("failures", 2), fail_status=429,
                  retry_after=str(after), error_format=fmt)


def _server_errors(opts: Options, fmt: str) -> Faults:
    return Faults(fail_first=opts.whole("failures", 2),
                  fail_status=opts.whole_choice("status", 500, (500, 502, 503, 504)),
                  error_format=fmt)


def _slow(opts: Options, fmt: str) -> Faults:
    return Faults(delay_s=opts.number("delay_s", 0.5, high=60), error_format=fmt)


SCENARIOS: dict[str, Scenario] = {name: _event_scenario(name) for name in EVENT_SCENARIOS}
SCENARIOS.update({
    "late-events": _fault_scenario("late-events", _late),
    "advanced-features-off": _fault_scenario("advanced-features-off", _denied),
    "rate-limited": _fault_scenario("rate-limited", _rate_limited),
    "server-errors": _fault_scenario("server-errors", _server_errors),
    "slow": _fault_scenario("slow", _slow),
})


from devtools.simulator.legs import LEG_SCENARIOS  # noqa: E402 - builds on the above

SCENARIOS.update(LEG_SCENARIOS)


def build_call(scenario: str, inp: ScenarioInput) -> CallRecord:
    """The record of ``scenario`` for ``inp``; ``ValueError`` for unknown names or bad options."""
    try:
        build = SCENARIOS[scenario]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}") from None
    return build(inp)
