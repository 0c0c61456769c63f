"""Legs with no Voice SDK party: their child legs, and (opt-in) their Call Summary.

A phone number's status callback reports the caller's phone leg, which has no SDK
events; the agent's browser is a child leg its ``<Dial><Client>`` created. So a terminal
phone leg has its children listed once (Calls API, one request per page) and each child
with a ``client:`` party is admitted to the intake as a call of its own, due at once:
the intake writes a call only if it is absent, so a child is analysed once whichever
way it arrives (its own callback, or its parent's). With ``call_summary`` in
``INSIGHTS_EDGES`` the phone leg itself is read from its Call Summary
``SUMMARY_DELAY_SECONDS`` after it ended (``service.analysis.summary_tags``).

The analysis step runs these in stages carried by its ``Again`` state: ``""`` (children
not listed yet), ``listed``, ``summary`` (the summary is due).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from service.calls import Call, has_sdk_party

if TYPE_CHECKING:
    from service.insights.summary import CallSummary
    from service.settings import Settings

log = structlog.get_logger(__name__)

FIRST, LISTED, SUMMARY = "", "listed", "summary"


class LegReader(Protocol):
    """What the step reads about a leg besides its events (``workers`` builds it per call,
    with the call's account's credentials)."""

    def child_legs(self, call: Call) -> Sequence[Call]: ...

    def summary(self, call: Call) -> CallSummary: ...


@dataclass(frozen=True)
class LegPolicy:
    """Whether children are followed and summaries read, and when."""

    follow_children: bool = True
    summaries: bool = False
    #: From the first analysis (``ANALYSIS_DELAY_SECONDS`` after the end) to the summary read.
    summary_wait_s: float = 510.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LegPolicy:
        wait = max(0, settings.summary_delay_seconds - settings.analysis_delay_seconds)
        return cls(follow_children=settings.follow_child_legs,
                   summaries=settings.reads_summaries, summary_wait_s=float(wait))

    def lists_children(self, call: Call, stage: str) -> bool:
        """A leg with no SDK party lists its children once, at its first analysis; a
        ``failed`` leg never connected, so it has none."""
        return (self.follow_children and stage == FIRST and not has_sdk_party(call)
                and call.status != "failed")

    def reads_summary(self, call: Call) -> bool:
        """Only an answered leg with no SDK party has a summary worth reading."""
        return self.summaries and not has_sdk_party(call) and call.status == "completed"


def admit_children(call: Call, children: Sequence[Call],
                   admit: Callable[[Call], bool]) -> int:
    """Admit each ended child with a ``client:`` party; return how many were new."""
    admitted = 0
    for child in children:
        if not has_sdk_party(child) or (not child.from_ and not child.to):
            continue
        if not child.is_terminal:
            log.info("child_leg_not_ended", child_call_sid=child.call_sid, status=child.status)
            continue
        new = admit(child)
        admitted += new
        log.info("child_leg_admitted" if new else "child_leg_known",
                 child_call_sid=child.call_sid, parent_call_sid=call.call_sid)
    log.info("child_legs_listed", children=len(children), admitted=admitted)
    return admitted
