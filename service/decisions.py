"""What a step decides: the small, typed answer a worker turns into one scheduling call.

A step (the analysis of a call, the delivery of an alert to one sink) is domain code:
it does its work and returns one of three decisions instead of sleeping, scheduling
or raising into the job runner:

- ``Done``: finished, with its outcome (``alert``, ``delivered``, ``duplicate``...);
- ``Again``: run the same step again after ``after_s`` seconds, with ``state`` (the
  step's own JSON-safe counters: recheck, attempt, booked slot) carried to that run;
- ``Failed``: finished for good without doing its job; ``reason`` is machine-readable
  and ``message`` says what to fix.

The worker edge (``workers.jobs``) knows nothing of what the outcomes mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AnalysisOutcome(StrEnum):
    ALERT = "alert"
    NO_ALERT = "no_alert"
    #: The call cannot carry Voice SDK events and only ``sdk_edge`` is configured.
    SKIPPED = "skipped"
    RECHECK = "recheck"
    RETRY = "retry"
    GAVE_UP = "gave_up"
    FAILED = "failed"


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    PACED = "paced"
    RETRY = "retry"
    REJECTED = "rejected"
    FAILED = "failed"


Outcome = AnalysisOutcome | DeliveryOutcome


@dataclass(frozen=True)
class Delivery:
    """One message for one sink, to be sent by a delivery step of its own."""

    sink: str
    #: The JSON-safe message (an alert's webhook envelope).
    message: dict[str, Any]


@dataclass(frozen=True)
class Done:
    outcome: Outcome
    #: Messages the worker schedules, one delivery job each (an alert's sinks).
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class Again:
    outcome: Outcome
    after_s: float
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    outcome: Outcome
    reason: str
    message: str


Decision = Done | Again | Failed


@dataclass(frozen=True)
class Drop:
    """Why a made alert goes nowhere: ``silenced`` (with ``silence_id``) or ``unrouted``
    (decided by ``service.delivery.silences``, acted on by the analysis step)."""

    reason: str
    fields: dict[str, str] = field(default_factory=dict)
