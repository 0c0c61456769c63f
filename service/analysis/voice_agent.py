"""ConversationRelay (voice AI agent) events become issues in category ``voice-agent``.

Twilio's Conversation Relay Insights events (group ``conversation_relay``; ``edge`` and
usually ``level`` null) describe a session's turns: speech starts and ends, tokens from
the application, ``stt_latency`` and ``tts_latency`` with their ``latency_ms``, the
wrap-up. Of these:

* an ERROR-level event is an error (one issue per name and code), described by what the
  event says, or by its name when it says nothing;
* a latency event above ``VOICE_AGENT_LATENCY_MS`` is a warning, one per latency kind,
  counting the turns above the limit and naming the worst;
* everything else (speech, tokens, interruptions, configuration, wrap-up) makes no issue.

Every description is callwatch's own and never empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from service.analysis.alert import Issue, iso
from service.analysis.catalogue import VOICE_AGENT
from service.insights.events import LEVEL_ORDER, RELAY_GROUP, Event

#: What each latency event measures (Twilio's Conversation Relay Insights events page).
LATENCIES = {
    "stt_latency": "Speech-to-text (the end of the caller's words to their transcript)",
    "tts_latency": "Text-to-speech (the agent's text to the start of its audio)",
}
_ERROR_RANK = LEVEL_ORDER["ERROR"]


def is_relay(event: Event) -> bool:
    return event.group == RELAY_GROUP


def relay_issues(events: Sequence[Event], *, latency_ms: int, min_level: str = "WARNING",
                 ignore: frozenset[str] = frozenset()) -> list[Issue]:
    """The issues of a call's ConversationRelay events (others are skipped)."""
    errors: dict[str, list[Event]] = {}
    slow: dict[str, list[Event]] = {}
    for event in events:
        if not is_relay(event) or f"{RELAY_GROUP}/{event.name}" in ignore:
            continue
        name = event.name or "unknown"
        if event.level_rank >= _ERROR_RANK:
            key = f"{RELAY_GROUP}/{name}" + (f"/{event.error_code}" if event.error_code else "")
            errors.setdefault(key, []).append(event)
        elif (name in LATENCIES and event.latency_ms is not None
              and event.latency_ms > latency_ms and min_level == "WARNING"):
            slow.setdefault(name, []).append(event)
    issues = [_error(key, found) for key, found in errors.items()]
    issues += [_latency(name, found, latency_ms) for name, found in slow.items()]
    return issues


def _error(key: str, events: list[Event]) -> Issue:
    first = events[0]
    said = next((e.error_message for e in events if e.error_message), None)
    what = f"The voice AI agent's ConversationRelay session reported an error ({first.name})"
    if first.error_code is not None:
        what += f", code {first.error_code}"
    description = f"{what}: {said}" if said else what
    return Issue(key=key, edge=None, group=RELAY_GROUP, name=first.name, level="ERROR",
                 severity="error", count=len(events), first_at=_at(events, min),
                 last_at=_at(events, max), error_code=first.error_code,
                 description=description, category=VOICE_AGENT, sdk_message=said)


def _latency(name: str, events: list[Event], limit: int) -> Issue:
    worst = max(e.latency_ms or 0.0 for e in events)
    turns = f"{len(events)} turn{'s' if len(events) != 1 else ''}"
    description = (f"{LATENCIES[name]} took up to {worst:,.0f} ms, above the "
                   f"{limit:,} ms limit in {turns}: the caller waited for the voice AI agent")
    return Issue(key=f"{RELAY_GROUP}/{name}", edge=None, group=RELAY_GROUP, name=name,
                 level="WARNING", severity="warning", count=len(events),
                 first_at=_at(events, min), last_at=_at(events, max),
                 description=description, category=VOICE_AGENT)


def _at(events: list[Event], pick: Callable[[list[datetime]], datetime]) -> str | None:
    times = [e.timestamp if e.timestamp.tzinfo else e.timestamp.replace(tzinfo=UTC)
             for e in events if e.timestamp is not None]
    return iso(pick(times)) if times else None
