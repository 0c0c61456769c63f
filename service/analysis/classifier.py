"""Turn one call's Insights events into issues, and issues into at most one alert.

The rules (the README's "Alerts"; what the Voice SDKs publish is in the
twilio-voice.js source, ``call.ts`` and ``statsMonitor.ts``):

* One issue per edge/group/name, plus the error code when the SDK sent one
  (``sdk_edge/connection/error/31005``). A quality warning's key drops ``-raised``
  from its group (``sdk_edge/network-quality-warning/high-rtt``) because the issue
  covers both the raised and the cleared events.
* Only WARNING and ERROR events at or above ``AlertPolicy.min_level`` make issues;
  ``-warning-cleared`` events (at any level) only close a warning. Unknown groups,
  names and edges are kept, since a new SDK event is more likely news than noise.
* A media reconnection: the JS SDK publishes ``connection/error`` 53405 at WARNING
  when it starts one, then ``connection/reconnecting``, and ``connection/reconnected``
  once media flows again (during set-up, only ICE ``connected`` shows it, as
  ``reconnected`` waits for signalling). Recovered, it is a warning (cleared, with the time it
  took), and the ICE and peer-connection ``failed`` states published while it ran
  belong to it rather than being failures of their own. Not recovered (a 53405 at
  ERROR, or the call ended while reconnecting), it is an error.
* Codes that only say how the call ended (busy, declined, unavailable, cancelled)
  make no issue unless ``AlertPolicy.outcomes``; then they are warnings.
* A ``failed`` call is an issue of its own (``call/failed``) whatever the events say;
  ``busy``, ``no-answer`` and ``canceled`` are ordinary outcomes.

It runs in one pass over the events (plus one over the reconnections) after a sort
that is linear on the time-ordered pages Insights returns, so a long call costs
milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from service.analysis.alert import Alert, Issue, iso, make_alert_id, summarize
from service.analysis.catalogue import (
    MEDIA_CONNECTION_CODE,
    RECOVERED_MEDIA,
    describe,
    describe_event,
    event_category,
    is_outcome,
)
from service.analysis.voice_agent import is_relay, relay_issues
from service.calls import Call
from service.insights.events import LEVEL_ORDER, ClientInfo, Event

if TYPE_CHECKING:
    from service.settings import Settings

_RAISED, _CLEARED = "-warning-raised", "-warning-cleared"
#: The issue a ``failed`` call is by itself; ``ALERT_IGNORE=call/failed`` silences it.
FAILED_KEY = "call/failed"
_WARNING_RANK = LEVEL_ORDER["WARNING"]
_ERROR_RANK = LEVEL_ORDER["ERROR"]
_EPOCH = datetime.min.replace(tzinfo=UTC)
#: Media states the SDK publishes as a reconnection starts or while it retries.
_MEDIA_FAILURES = frozenset({"ice-connection-state/failed", "pc-connection-state/failed"})
#: How long before a reconnection's start a failed media state still belongs to it
#: (the SDK publishes them in the same tick; this allows for clock rounding).
_MEDIA_FAILURE_LEAD = timedelta(seconds=2)


@dataclass(frozen=True)
class AlertPolicy:
    """What is worth an alert: the lowest level, ignored ``group/name`` pairs, a cap,
    and whether codes that only say how a call ended become warnings."""

    min_level: str = "WARNING"
    ignore: frozenset[str] = frozenset()
    max_issues: int = 40
    outcomes: bool = False
    #: ConversationRelay latency above which a warning is raised (``VOICE_AGENT_LATENCY_MS``).
    voice_agent_latency_ms: int = 1500

    def __post_init__(self) -> None:
        level = self.min_level.upper()
        if level not in ("WARNING", "ERROR"):
            raise ValueError(f"min_level must be WARNING or ERROR, not {self.min_level!r}")
        if self.max_issues < 1:
            raise ValueError("max_issues must be at least 1")
        object.__setattr__(self, "min_level", level)
        object.__setattr__(self, "ignore", frozenset(self.ignore))

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertPolicy:
        """The policy ``ALERT_MIN_LEVEL``, ``ALERT_IGNORE`` and ``ALERT_OUTCOMES`` describe."""
        return cls(min_level=settings.alert_min_level, ignore=settings.alert_ignore,
                   outcomes=settings.alert_outcomes,
                   voice_agent_latency_ms=settings.voice_agent_latency_ms)


class _Tally:
    """What one issue has gathered so far (internal and mutable, for speed)."""

    __slots__ = ("category", "cleared", "code", "count", "description", "duration", "edge",
                 "first", "group", "key", "last", "level", "media", "message", "message_rank",
                 "name", "open_since", "outcome", "rank", "warning")

    def __init__(self, key: str, event: Event, edge: str, group: str, name: str,
                 warning: bool) -> None:
        self.key, self.edge, self.group, self.name = key, edge, group, name
        self.warning = warning
        self.code = None if warning else event.error_code
        self.media = self.code == MEDIA_CONNECTION_CODE and group == "connection"
        self.outcome = is_outcome(self.code)
        self.description = _description(event)
        self.category = event_category(group, name, self.code)
        self.message: str | None = None
        self.message_rank = -1
        self.count = 0
        self.rank = -1
        self.level = ""
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.duration = 0.0
        self.open_since: datetime | None = None
        self.cleared: bool | None = None

    def issue(self) -> Issue:
        severity = "error" if self.level == "ERROR" else "warning"
        description = self.description
        if self.media and self.cleared is not None:  # a reconnection ran
            severity = "error" if self.level == "ERROR" or not self.cleared else "warning"
            description = RECOVERED_MEDIA if severity == "warning" else description
        if self.outcome:
            severity = "warning"
        timed = self.warning or (self.media and self.cleared is not None)
        return Issue(
            key=self.key, edge=self.edge, group=self.group, name=self.name,
            level=self.level, severity=severity, count=self.count,
            first_at=iso(self.first), last_at=iso(self.last),
            duration_s=round(self.duration, 3) if timed else None,
            cleared=self.cleared if timed else None,
            error_code=self.code, description=description,
            category=self.category, sdk_message=self.message,
        )


def classify(call: Call, events: Sequence[Event], policy: AlertPolicy,
             extra: Sequence[Issue] = ()) -> list[Issue]:
    """Every issue of the call, sorted: errors first, then by first time, then key.
    ``extra``: issues found elsewhere (a Call Summary's tags)."""
    min_rank = max(LEVEL_ORDER[policy.min_level], _WARNING_RANK)
    relay = relay_issues(events, latency_ms=policy.voice_agent_latency_ms,
                         min_level=policy.min_level, ignore=policy.ignore)
    ordered = _in_time_order([event for event in events if not is_relay(event)])
    absorbed = _absorbed_by_recoveries(ordered)
    tallies: dict[str, _Tally] = {}
    open_warnings: dict[str, _Tally] = {}
    last_seen: datetime | None = None
    for index, (moment, event) in enumerate(ordered):
        if moment is not None:
            last_seen = moment if last_seen is None or moment > last_seen else last_seen
        group = event.group or "unknown"
        name = event.name or "unknown"
        edge = event.edge or "unknown_edge"
        if group.endswith(_CLEARED):
            tally = open_warnings.pop(f"{edge}/{group[:-len('-cleared')]}/{name}", None)
            if tally is not None:
                _close(tally, moment)
            continue
        if _media_restored(event):
            tally = open_warnings.pop(_media_key(edge), None)
            if tally is not None:
                _close(tally, moment)
            continue
        if event.level_rank < min_rank or index in absorbed:
            continue
        warning = group.endswith(_RAISED)
        key_group = group[:-len("-raised")] if warning else group
        if f"{group}/{name}" in policy.ignore or f"{key_group}/{name}" in policy.ignore:
            continue
        if not warning and is_outcome(event.error_code) and not policy.outcomes:
            continue
        key = f"{edge}/{key_group}/{name}"
        if not warning and event.error_code is not None:
            key = f"{key}/{event.error_code}"
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally(key, event, edge, group, name, warning)
        _count(tally, event, moment)
        if tally.media:
            _media_event(tally, event, moment, open_warnings)
        elif warning and tally.key not in open_warnings:
            open_warnings[tally.key] = tally
            tally.open_since = moment
            tally.cleared = False
    for tally in open_warnings.values():  # never cleared: raised until the call's last event
        _close(tally, last_seen, cleared=False)
    issues = [tally.issue() for tally in tallies.values()] + relay + list(extra)
    if call.status == "failed" and FAILED_KEY not in policy.ignore:
        issues.append(failed_issue(call))
    issues.sort(key=_order)
    return issues


def build_alert(call: Call, events: Sequence[Event], policy: AlertPolicy, *,
                now: datetime, extra: Sequence[Issue] = ()) -> Alert | None:
    """The call's alert, or None when nothing is worth one.

    ``alert_id`` depends only on the CallSid and every issue key (including any cut
    by ``max_issues``), so analysing the same call again gives the same id.
    """
    issues = classify(call, events, policy, extra)
    if not issues:
        return None
    kept = issues[: policy.max_issues]
    return Alert(
        alert_id=make_alert_id(call.call_sid, (issue.key for issue in issues)),
        created_at=now,
        call=call,
        issues=tuple(kept),
        client=first_client(events),
        truncated_issues=len(issues) - len(kept),
        summary=summarize(call, issues),
    )


def failed_issue(call: Call) -> Issue:
    """The issue a ``failed`` call is by itself: it never connected."""
    sip = call.sip_response_code
    description = "The call could not be completed as dialed"
    if sip is not None:
        description += f" (SIP {sip})"
    at = iso(_callback_time(call.timestamp))
    return Issue(
        key=FAILED_KEY, edge=None, group="call", name="failed", level="ERROR",
        severity="error", count=1, first_at=at, last_at=at, error_code=sip,
        description=description, category="other",
    )


def first_client(events: Sequence[Event]) -> ClientInfo | None:
    """The first device description among the events, preferring the SDK's own."""
    fallback: ClientInfo | None = None
    for event in events:
        if event.client is None or event.client.is_empty:
            continue
        if event.edge == "sdk_edge":
            return event.client
        if fallback is None:
            fallback = event.client
    return fallback


def _in_time_order(events: Sequence[Event]) -> list[tuple[datetime | None, Event]]:
    """Events with their (UTC) time, stably sorted by time.

    An event without a timestamp sorts where it was, just after its predecessor, so
    a cleared event with no time still closes the warning raised before it.
    """
    timed: list[tuple[datetime, datetime | None, int, Event]] = []
    previous = _EPOCH
    for index, event in enumerate(events):
        moment = event.timestamp
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment is not None:
            previous = moment
        timed.append((previous, moment, index, event))
    timed.sort(key=lambda row: (row[0], row[2]))
    return [(moment, event) for _, moment, _, event in timed]


def _absorbed_by_recoveries(ordered: Sequence[tuple[datetime | None, Event]]) -> set[int]:
    """Positions of the ICE and peer-connection ``failed`` states that a recovered
    media reconnection explains: published just before it started or while it ran."""
    spans: list[tuple[str, datetime, datetime]] = []
    started: dict[str, datetime] = {}
    for moment, event in ordered:
        edge = event.edge or "unknown_edge"
        if moment is None:
            continue
        if (event.group, event.name) == ("connection", "error") and (
                event.error_code == MEDIA_CONNECTION_CODE):
            if event.level_rank == _WARNING_RANK:
                started.setdefault(edge, moment)
            elif event.level_rank >= _ERROR_RANK:
                started.pop(edge, None)
        if _media_restored(event) and edge in started:
            spans.append((edge, started.pop(edge), moment))
    if not spans:
        return set()
    absorbed = set()
    for index, (moment, event) in enumerate(ordered):
        if moment is None or f"{event.group}/{event.name}" not in _MEDIA_FAILURES:
            continue
        edge = event.edge or "unknown_edge"
        if any(e == edge and begin - _MEDIA_FAILURE_LEAD <= moment <= end
               for e, begin, end in spans):
            absorbed.add(index)
    return absorbed


def _media_event(tally: _Tally, event: Event, moment: datetime | None,
                 open_warnings: dict[str, _Tally]) -> None:
    """A 53405: at WARNING a reconnection starts; at ERROR the SDK gave the media up."""
    key = _media_key(tally.edge)
    if event.level_rank == _WARNING_RANK:
        if key not in open_warnings:
            open_warnings[key] = tally
            tally.open_since = moment
            tally.cleared = False
    elif event.level_rank >= _ERROR_RANK and open_warnings.pop(key, None) is not None:
        _close(tally, moment, cleared=False)


def _media_restored(event: Event) -> bool:
    """``connection/reconnected``, or ICE connected again: the SDK publishes
    ``reconnected`` only once signalling is open too, so a reconnection during set-up
    shows its recovery only as the ICE state."""
    if event.group == "connection":
        return event.name == "reconnected"
    return event.group == "ice-connection-state" and event.name in ("connected", "completed")


def _media_key(edge: str) -> str:
    return f"{edge}/connection/error/{MEDIA_CONNECTION_CODE}"


def _count(tally: _Tally, event: Event, moment: datetime | None) -> None:
    tally.count += 1
    if event.error_message and event.level_rank > tally.message_rank:
        tally.message, tally.message_rank = event.error_message, event.level_rank
    if event.level_rank > tally.rank:
        tally.rank = event.level_rank
        tally.level = event.level or "UNKNOWN"
    if moment is not None:
        if tally.first is None:
            tally.first = moment
        tally.last = moment


def _close(tally: _Tally, moment: datetime | None, *, cleared: bool = True) -> None:
    if moment is not None and tally.open_since is not None and moment > tally.open_since:
        tally.duration += (moment - tally.open_since).total_seconds()
    tally.open_since = None
    tally.cleared = cleared


def _description(event: Event) -> str | None:
    """The code's meaning, else the SDK's message about its code, else the event's
    (a quality warning's with the threshold and values it carries)."""
    code_meaning = describe(event.error_code)
    if code_meaning:
        return code_meaning
    if event.error_code is not None and event.error_message:
        return event.error_message
    return (describe_event(event.group, event.name, event.threshold, event.values)
            or event.error_message)


def _order(issue: Issue) -> tuple[int, bool, str, str]:
    return (issue.severity != "error", issue.first_at is None, issue.first_at or "", issue.key)


def _callback_time(value: str | None) -> datetime | None:
    """A status callback's ``Timestamp`` (RFC 2822), or None when absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
