"""Scenarios of more than one SDK leg: a phone call answered by a browser agent, a carrier
or SIP leg with Call Summary tags, and a ConversationRelay (voice AI agent) session.

* ``inbound-to-agent``: a caller's phone leg (``inbound``, phone to phone, no SDK events)
  whose ``<Dial><Client>`` made a child leg to ``client:<agent>`` (``outbound-dial``)
  with the SDK events of ``events`` (default ``sdk-error``). The Calls API lists the
  child under ``ParentCallSid``; options ``agent`` and ``children`` (how many agent legs;
  more than 50 makes the list span pages).
* ``carrier-leg``: a phone-to-phone leg (``call_type`` carrier or sip) whose Call Summary
  carries ``tags`` (default ``high_jitter,high_packet_loss``); ``summary_complete_after_s``:
  how long the summary stays ``partial``.
* ``voice-agent``: a phone leg connected to ``<ConversationRelay>``: the Insights events of
  the session (group ``conversation_relay``, edge and level null except ``error``), with
  ``stt_latency``/``tts_latency`` carrying ``latency_ms`` (the worst: ``worst_latency_ms``)
  and, with ``error=true``, one ERROR-level ``error`` event. Where the payload sits in an
  event is not in Twilio's published example; the simulator puts it under
  ``conversation_relay`` (see the README's "Voice AI agents").
"""

from __future__ import annotations

import hashlib
import random
import zlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from devtools.simulator.timeline import Options, Timeline, gateway_progress

if TYPE_CHECKING:
    from devtools.simulator.scenarios import CallRecord, Scenario, ScenarioInput

SUMMARY_TAGS = ("high_jitter", "high_packet_loss", "high_latency", "high_pdd", "silence")
CALLER = "+14155550100"
NUMBER = "+14155550123"


def child_sid(parent_sid: str, n: int) -> str:
    """The CallSid of a parent's n-th child leg: derived, so a test can name it."""
    return "CA" + hashlib.sha256(f"{parent_sid}/{n}".encode()).hexdigest()[:32]


def _inbound_to_agent(inp: ScenarioInput) -> CallRecord:
    from devtools.simulator.scenarios import (
        EVENT_SCENARIOS,
        CallRecord,
        LegInfo,
        ScenarioInput,
        build_call,
    )

    opts = Options(inp.options)
    events = opts.choice("events", "sdk-error", tuple(EVENT_SCENARIOS))
    agent = str(opts.raw("agent", "alice"))
    count = opts.whole("children", 1, low=0, high=2000)
    duration_s = opts.whole("duration_s", 42, low=1, high=86_400)
    opts.check_all_used()
    started_at = inp.now - timedelta(seconds=duration_s)
    children = []
    for n in range(count):
        sid = child_sid(inp.call_sid, n)
        child = build_call(events, ScenarioInput(sid, inp.account_sid, inp.now,
                                                 {"duration_s": max(1, duration_s - 3)}))
        children.append(CallRecord(
            call_sid=sid, account_sid=inp.account_sid, scenario=events, call_type="client",
            duration_s=child.duration_s, events=child.events, started_at=child.started_at,
            leg=LegInfo(from_=CALLER, to=f"client:{agent}", direction="outbound-dial",
                        parent_call_sid=inp.call_sid)))
    tl = Timeline(inp.call_sid, inp.account_sid, started_at, duration_s,
                  random.Random(zlib.crc32(inp.call_sid.encode())))  # noqa: S311
    gateway_progress(tl, "carrier_edge")
    return CallRecord(call_sid=inp.call_sid, account_sid=inp.account_sid,
                      scenario="inbound-to-agent", call_type="carrier", duration_s=duration_s,
                      events=tl.events(), started_at=started_at, children=tuple(children),
                      leg=LegInfo(from_=CALLER, to=NUMBER, direction="inbound"))


def _carrier_leg(inp: ScenarioInput) -> CallRecord:
    from devtools.simulator.scenarios import CallRecord, Faults, LegInfo

    opts = Options(inp.options)
    call_type = opts.choice("call_type", "carrier", ("carrier", "sip"))
    tags = _tags(opts.raw("tags", "high_jitter,high_packet_loss"))
    duration_s = opts.whole("duration_s", 42, low=1, high=86_400)
    complete_after = opts.number("summary_complete_after_s", 0.0)
    opts.check_all_used()
    started_at = inp.now - timedelta(seconds=duration_s)
    edge = "carrier_edge" if call_type == "carrier" else "sip_edge"
    tl = Timeline(inp.call_sid, inp.account_sid, started_at, duration_s,
                  random.Random(zlib.crc32(inp.call_sid.encode())))  # noqa: S311
    gateway_progress(tl, edge)
    to = NUMBER if call_type == "carrier" else "sip:agent@pbx.example.com"
    return CallRecord(call_sid=inp.call_sid, account_sid=inp.account_sid, scenario="carrier-leg",
                      call_type=call_type, duration_s=duration_s, events=tl.events(),
                      started_at=started_at, summary_tags=tags,
                      faults=Faults(summary_complete_after_s=complete_after),
                      leg=LegInfo(from_=CALLER, to=to, direction="inbound"))


def _tags(value: Any) -> tuple[str, ...]:
    parts = value if isinstance(value, list) else str(value).split(",")
    tags = tuple(str(part).strip() for part in parts if str(part).strip())
    unknown = [tag for tag in tags if tag not in SUMMARY_TAGS]
    if unknown:
        raise ValueError(f"option tags: unknown tag(s) {', '.join(unknown)}; "
                         f"known: {', '.join(SUMMARY_TAGS)}")
    return tags


def _voice_agent(inp: ScenarioInput) -> CallRecord:
    from devtools.simulator.scenarios import CallRecord, LegInfo

    opts = Options(inp.options)
    worst = opts.whole("worst_latency_ms", 2350, low=0, high=600_000)
    error = opts.raw("error", True) not in (False, 0, "false", "0", "no")
    duration_s = opts.whole("duration_s", 42, low=6, high=86_400)
    opts.check_all_used()
    started_at = inp.now - timedelta(seconds=duration_s)
    tl = Timeline(inp.call_sid, inp.account_sid, started_at, duration_s,
                  random.Random(zlib.crc32(inp.call_sid.encode())))  # noqa: S311
    gateway_progress(tl, "carrier_edge")
    relay_session(tl, worst_latency_ms=worst, error=error)
    return CallRecord(call_sid=inp.call_sid, account_sid=inp.account_sid, scenario="voice-agent",
                      call_type="carrier", duration_s=duration_s, events=tl.events(),
                      started_at=started_at,
                      leg=LegInfo(from_=CALLER, to=NUMBER, direction="inbound"))


def relay_session(tl: Timeline, *, worst_latency_ms: int, error: bool) -> None:
    """Two turns of a ConversationRelay session, named as Twilio's Conversation Relay
    Insights events are, the worst latency on the second turn's speech-to-text."""
    session = "VX" + hashlib.sha256(tl.call_sid.encode()).hexdigest()[:32]
    seq = iter(range(1, 1000))

    def relay(at: float, name: str, level: str | None = None, **payload: Any) -> None:
        tl.relay(at, name, level, {"session_id": session, "sequence_number": next(seq),
                                   **payload})

    relay(1.6, "configurations")
    for turn, (start, stt, tts) in enumerate(((3.0, 420, 310), (9.0, worst_latency_ms, 380))):
        relay(start, "start_of_customer_speech")
        relay(start + 1.5, "end_of_customer_speech")
        relay(start + 1.6, "stt_latency", latency_ms=stt)
        relay(start + 1.7, "prompt_sent")
        relay(start + 2.1, "first_token_received")
        relay(start + 2.4, "final_token_received", total_tokens=42 + turn, total_words=31)
        relay(start + 2.5, "tts_latency", latency_ms=tts)
        relay(start + 2.9, "start_of_agent_speech")
        relay(start + 5.0, "end_of_agent_speech")
    if error:
        relay(15.0, "error", "ERROR", error_code=64107,
              description="WebSocket connection to the application closed unexpectedly")
    relay(float(tl.duration_s), "call_wrap_up")


LEG_SCENARIOS: dict[str, Scenario] = {
    "inbound-to-agent": _inbound_to_agent,
    "carrier-leg": _carrier_leg,
    "voice-agent": _voice_agent,
}
