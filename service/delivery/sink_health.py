"""Which sinks are slow now: their recent sends timed out or took over ``SLOW_AFTER_S``.

A slow sink is held to a small share of the worker processes (the worker edge's
``workers.rq_adaptations.sink_lines``) so that it delays only itself; a healthy one is not held at all.
The mark is one Redis key per sink, set by the send that was slow and removed by a send
that answers promptly (each process clears it at most once per ``CLEAR_EVERY_S``; a send
known to have begun with no mark clears nothing), so the guard lifts within a second of
the receiver's recovery.
It expires by itself after ``REMEMBER_S`` (a sink nobody sends to is not held forever).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import redis as redis_lib

from service import keys

#: A send slower than this marks its sink slow.
SLOW_AFTER_S = 5.0
#: A send that got no answer after this long timed out (the connect timeout is 3.05 s).
TIMED_OUT_AFTER_S = 3.0
#: How long a slow mark lasts without a send to renew or clear it.
REMEMBER_S = 600
#: A process clears a healthy sink's mark at most this often.
CLEAR_EVERY_S = 1.0

#: Per process: when this process last cleared each sink's mark.
_cleared: dict[str, float] = {}


class SinkHealth:
    """Marks sinks slow or healthy from how their sends went, across every process."""

    def __init__(self, redis: redis_lib.Redis,
                 clock: Callable[[], float] = time.monotonic, *, unmarked: bool = False) -> None:
        """``unmarked``: the caller saw the sink unmarked as the send began (a send within
        the analysis job takes its slot only then): a prompt answer has no mark of its own
        to clear, so none is deleted (a guard must not cost the healthy path). A mark set
        meanwhile by another process sends the sink's next alerts to delivery jobs, whose
        prompt answers clear it."""
        self._redis = redis
        self._clock = clock
        self._unmarked = unmarked

    def record(self, sink: str, seconds: float, *, answered: bool) -> bool:
        """Note one send that took ``seconds`` (``answered``: the receiver said something);
        return True when the sink is now slow."""
        slow = seconds > SLOW_AFTER_S or (not answered and seconds >= TIMED_OUT_AFTER_S)
        if slow:
            self._redis.set(keys.sink_slow(sink), f"{seconds:.1f}", ex=REMEMBER_S)
            _cleared.pop(sink, None)
        elif (not self._unmarked
              and self._clock() - _cleared.get(sink, float("-inf")) >= CLEAR_EVERY_S):
            # A healthy sink's sends clear the mark at most once a second per process: one
            # round trip saved per send, and a recovered sink is released within a second.
            self._redis.delete(keys.sink_slow(sink))
            _cleared[sink] = self._clock()
        return slow

    def slow(self, sinks: Iterable[str]) -> dict[str, bool]:
        """Which of ``sinks`` are slow now (one round trip)."""
        names = list(sinks)
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(keys.sink_slow(name))
        return {name: bool(found) for name, found in zip(names, pipe.execute(), strict=True)}
