"""An incident's events reach each sink in order: ``opened``, then ``updated``, then ``resolved``.

Each event is its own delivery job per sink, so a later event could overtake an
earlier one that is paced or being retried. Event N for a sink therefore goes only
after the sink took event N-1 (its ledger entry) or gave up on it for good (a
``settled`` mark the delivery step writes when N-1 fails). Until then its job comes
back every ``ORDER_WAIT_S``; after ``MAX_ORDER_WAIT_S`` it goes anyway, so a lost
predecessor cannot hold the incident's later events back forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from redis import Redis

from service import keys
from service.delivery.incidents.events import IncidentEvent

#: Seconds between two looks at the event before.
ORDER_WAIT_S = 2.0
#: Past this age (s) an event no longer waits for the one before it.
MAX_ORDER_WAIT_S = 6 * 3600
#: Settled marks are kept as long as the ledger's entries.
SETTLED_TTL_S = 7 * 86400


class EventOrder:
    """Whether an incident event may go to a sink now, and the marks that say so."""

    def __init__(self, redis: Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock

    def wait_for_previous(self, sink: str, event: IncidentEvent) -> float:
        """0.0 when the event may go now, else the seconds before looking again."""
        previous = event.previous_id
        if previous is None:
            return 0.0
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(keys.delivered(sink, previous))
        pipe.exists(keys.settled(sink, previous))
        if any(pipe.execute()):
            return 0.0
        built = datetime.fromisoformat(event.timestamp.replace("Z", "+00:00")).timestamp()
        if self._clock() - built > MAX_ORDER_WAIT_S:
            return 0.0
        return ORDER_WAIT_S

    def settle(self, sink: str, message_id: str) -> None:
        """The sink will never take this event: the next one need not wait for it."""
        self._redis.set(keys.settled(sink, message_id), "1", ex=SETTLED_TTL_S)
