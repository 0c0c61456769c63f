"""Every Redis key callwatch itself writes, in one place (RQ's own keys stay in ``workers``).

All keys start with ``callwatch:`` so an operator can tell them from RQ's (``rq:``)
and count them with ``SCAN MATCH callwatch:*``.
"""

from __future__ import annotations

#: Calls waiting for their analysis, scored by when it is due (``service.intake``).
INTAKE = "callwatch:intake"
#: Counters and histograms of every process (``service.metrics``), one hash per metric.
METRICS_PREFIX = "callwatch:metrics:"


def call(call_sid: str) -> str:
    """A call's callback fields, kept a day: its presence makes a repeated callback a no-op."""
    return f"callwatch:call:{call_sid}"


def delivered(sink: str, message_id: str) -> str:
    """Ledger entry: ``sink`` took this alert (or incident event)."""
    return f"callwatch:delivered:{sink}:{message_id}"


def lease(sink: str, message_id: str) -> str:
    """Short lease held while one worker sends this message to this sink."""
    return f"callwatch:lease:{sink}:{message_id}"


def pace(sink: str) -> str:
    """The earliest time the next message may go to ``sink``."""
    return f"callwatch:pace:{sink}"


def pace_book(sink: str) -> str:
    """The end of the line of booked send slots for ``sink``."""
    return f"callwatch:pace-book:{sink}"


def worker_alive(worker_name: str) -> str:
    """A worker's liveness beat (``workers.liveness``)."""
    return f"callwatch:worker-alive:{worker_name}"


def sink_slots(sink: str) -> str:
    """Deliveries to ``sink`` running now, scored by deadline (``workers.sink_slots``)."""
    return f"callwatch:sink-slots:{sink}"


#: Active silences (``service.delivery.silences``): a sorted set of silences scored by
#: when each ends; the key itself expires with its last silence.
SILENCES = "callwatch:silences"
