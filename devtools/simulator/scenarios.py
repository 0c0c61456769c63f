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

    @property
    def default_edge(self) -> str:
        return DEFAULT_EDGE[self.call_type]

    def events_on(self, edge: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("edge") == edge]


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

def _clean(tl: Timeline, opts: Options) -> None:
    connect(tl)
    hang_up(tl)


def _sdk_error(tl: Timeline, opts: Options) -> None:
    code = opts.whole("code", 31005, low=10000, high=99999)  # another code: another issue
    up = connect(tl)
    at = up + (tl.duration_s - up) * 0.6
    tl.sdk(at, "connection", "error", "ERROR", error=code,
           message="Connection error: the signaling WebSocket ended unexpectedly")
    tl.sdk(at + 0.1, "connection", "disconnected-by-remote", "INFO")
    tl.sdk(at + 0.2, "ice-connection-state", "closed", "DEBUG")


def _ice_failure(tl: Timeline, opts: Options) -> None:
    tl.sdk(0.0, "get-user-media", "succeeded", "INFO")
    tl.sdk(0.1, "connection", "outgoing", "INFO")
    tl.sdk(0.2, "settings", "codec", "INFO", data={"codec": "opus"})
    tl.sdk(0.4, "ice-gathering-state", "gathering", "DEBUG")
    tl.sdk(1.0, "ice-connection-state", "checking", "DEBUG")
    end = float(tl.duration_s)
    tl.sdk(end - 0.3, "ice-connection-state", "failed", "ERROR")
    tl.sdk(end - 0.2, "pc-connection-state", "failed", "WARNING")
    tl.sdk(end - 0.1, "connection", "error", "ERROR", error=53405,
           message="Media connection failed: no ICE candidate pair succeeded")
    tl.sdk(end, "connection", "disconnected-by-local", "INFO")


def _mic_denied(tl: Timeline, opts: Options) -> None:
    tl.sdk(0.0, "connection", "outgoing", "INFO")
    tl.sdk(0.2, "get-user-media", "denied", "ERROR")
    tl.sdk(0.3, "connection", "error", "ERROR", error=31401,
           message="UserMedia PermissionDenied: the user denied access to the microphone")
    tl.sdk(0.4, "connection", "disconnected-by-local", "INFO")


def _warning(tl: Timeline, at: float, name: str, cleared_at: float | None, value: float,
             threshold: float, group: str = "network-quality-warning") -> None:
    tl.sdk(at, f"{group}-raised", name, "WARNING", data={"threshold": threshold, "value": value})
    if cleared_at is not None:
        tl.sdk(cleared_at, f"{group}-cleared", name, "INFO")


def _warnings_cleared(tl: Timeline, opts: Options) -> None:
    up = connect(tl)
    span = tl.duration_s - up
    _warning(tl, up + span * 0.10, "high-rtt", up + span * 0.25, 512, 400)
    _warning(tl, up + span * 0.40, "high-rtt", up + span * 0.55, 468, 400)
    _warning(tl, up + span * 0.60, "high-jitter", up + span * 0.70, 41, 30)
    hang_up(tl)


def _warning_uncleared(tl: Timeline, opts: Options) -> None:
    up = connect(tl)
    _warning(tl, up + (tl.duration_s - up) * 0.5, "low-mos", None, 2.6, 3.5)
    hang_up(tl)


def _many_events(tl: Timeline, opts: Options) -> None:
    count = opts.whole("count", 2500, low=20, high=100_000)
    connect(tl)
    hang_up(tl)
    filler = count - 16  # connect() and hang_up() add 16
    up, end = 1.6, tl.duration_s - 0.3
    step = (end - up) / filler
    for i in range(filler):
        at = up + i * step
        if i % 500 == 250:
            tl.sdk(at, "network-quality-warning-raised", "high-packet-loss", "WARNING",
                   data={"threshold": 1, "value": round(1 + tl.rng.random() * 4, 2)})
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
    "mic-denied": _mic_denied,
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
                      faults=fault)


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


def build_call(scenario: str, inp: ScenarioInput) -> CallRecord:
    """The record of ``scenario`` for ``inp``; ``ValueError`` for unknown names or bad options."""
    try:
        build = SCENARIOS[scenario]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}") from None
    return build(inp)
