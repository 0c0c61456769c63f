"""``SummaryClient``: a call's Voice Insights Call Summary, for its quality tags.

``GET {TWILIO_INSIGHTS_BASE_URL}/v1/Voice/{CallSid}/Summary?ProcessingState=partial``
(``insights.v1.call.summary`` in Twilio's OpenAPI description): a partial summary is
available within about ten minutes of the call's end and is accepted, so a leg costs one
request. Voice Insights tags a call with conditions that can degrade its quality
(``high_jitter``, ``high_packet_loss``, ``high_latency``, ``high_pdd``, ``silence``...);
the tags are read from the top-level ``tags`` and from the ``carrier_edge`` and
``sip_edge`` objects (their own ``tags`` and their ``metrics.inbound``/``outbound``
``tags``, where Twilio's Details page places per-stream data), each tag once per edge.
A 404 (not ready yet) is ``EventsNotReady``; the reading is ``InsightsClient``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.calls import CALL_SID_RE
from service.errors import InvalidInput
from service.insights.client import InsightsClient

GATEWAY_EDGES = ("carrier_edge", "sip_edge")
#: The edge a call type's top-level tags belong to.
_EDGE_OF_TYPE = {"carrier": "carrier_edge", "sip": "sip_edge", "trunking": "sip_edge"}


@dataclass(frozen=True)
class CallSummary:
    """What callwatch reads of a Call Summary: its state and its tags by edge."""

    call_sid: str
    processing_state: str | None
    call_type: str | None
    #: ``(edge, tag)`` pairs, in the order found, each once.
    tags: tuple[tuple[str, str], ...] = ()


class SummaryClient:
    """Reads one call's summary (partial accepted)."""

    def __init__(self, reader: InsightsClient) -> None:
        """``reader``: an ``InsightsClient`` on ``TWILIO_INSIGHTS_BASE_URL`` with the call's
        account's credentials."""
        self._reader = reader

    def __repr__(self) -> str:
        return f"SummaryClient(base_url={self._reader.base_url!r})"

    def fetch(self, call_sid: str) -> CallSummary:
        if not CALL_SID_RE.match(call_sid):
            raise InvalidInput("CallSid must be CA followed by 32 hex digits")
        page = self._reader.get_json(f"{self._reader.base_url}/v1/Voice/{call_sid}/Summary",
                                     {"ProcessingState": "partial"}, call_sid=call_sid,
                                     give_up_at=self._reader.deadline())
        return parse_summary(call_sid, page)


def parse_summary(call_sid: str, page: Mapping[str, Any]) -> CallSummary:
    """Read a summary leniently: every field is nullable, unknown tags are kept."""
    call_type = page.get("call_type") if isinstance(page.get("call_type"), str) else None
    found: list[tuple[str, str]] = []

    def add(edge: str, tags: Any) -> None:
        if isinstance(tags, list):
            for tag in tags:
                if isinstance(tag, str) and tag and (edge, tag[:64]) not in found:
                    found.append((edge, tag[:64]))

    for edge in GATEWAY_EDGES:
        block = page.get(edge)
        if not isinstance(block, Mapping):
            continue
        add(edge, block.get("tags"))
        metrics = block.get("metrics")
        if isinstance(metrics, Mapping):
            for direction in ("inbound", "outbound"):
                stream = metrics.get(direction)
                if isinstance(stream, Mapping):
                    add(edge, stream.get("tags"))
    own_edge = _EDGE_OF_TYPE.get(call_type or "")
    if own_edge is not None:
        add(own_edge, page.get("tags"))
    state = page.get("processing_state")
    return CallSummary(call_sid=call_sid,
                       processing_state=state if isinstance(state, str) else None,
                       call_type=call_type, tags=tuple(found))
