"""Sends due digests from the workers: what this adds to RQ's worker, and why.

RQ runs jobs when they are enqueued or scheduled; nothing in it fires on the wall clock
of a time zone ("every day at 08:00 Europe/Dublin"). So every worker process runs one
``DigestClock`` thread (started and stopped with the worker, beside the intake mover)
that calls the domain's ``service.delivery.digests.send_due`` every ``TICK_S``. That
call is safe from any number of workers at once and after any restart: each sink and
period goes through the delivery ledger (a lease while sending, "delivered" after), so
a digest goes out once, a little after its period ends. The same tick resolves the
PagerDuty groups that have been quiet for their ``resolve_after_s``
(``service.delivery.incidents.pager_groups``). No thread is started when no sink has a
``digest:`` option and none is a ``pagerduty`` sink.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import redis as redis_lib
import structlog

from service.delivery.digests.sending import DigestSink, digest_sinks, send_due
from service.delivery.digests.store import DigestStore
from service.delivery.incidents.pager_groups import PagerGroups, Resolver, pager_sinks, resolve_quiet
from service.delivery.ledger import DeliveryLedger
from service.delivery.pace import Pace

log = structlog.get_logger(__name__)

#: How often a worker looks for due digests: a digest goes out within this of its time.
TICK_S = 20.0


class DigestClock:
    """A daemon thread that sends due digests every ``TICK_S`` until ``stop()``."""

    def __init__(self, redis: redis_lib.Redis, sinks: list[DigestSink], *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 tick_s: float = TICK_S, pagers: Mapping[str, Resolver] | None = None) -> None:
        self._redis = redis
        self._sinks = sinks
        self._pagers = dict(pagers or {})  # sizes: pager sinks whose quiet groups get `resolve`
        self._clock = clock
        self._tick_s = tick_s
        self._store = DigestStore(redis)
        self._ledger = DeliveryLedger(redis)
        self._paces: dict[float, Pace] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-digests", daemon=True)

    @classmethod
    def for_worker(cls, redis: redis_lib.Redis) -> DigestClock | None:
        """The clock for this worker's configured digest sinks; None when there are none."""
        from workers.context import current

        sinks = digest_sinks(current().sinks)
        pagers = pager_sinks(current().sinks)  # sizes: PagerDuty groups resolve on this tick too
        return cls(redis, sinks, pagers=pagers) if sinks or pagers else None

    @property
    def sinks(self) -> list[DigestSink]:
        """The digest sinks this clock looks after."""
        return list(self._sinks)

    def start(self) -> DigestClock:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def tick(self) -> list[tuple[str, str]]:
        """One pass: send what is due (also what tests call, with a fake clock)."""
        if self._pagers:  # sizes: resolve the PagerDuty groups quiet for their resolve_after_s
            resolve_quiet(PagerGroups(self._redis), self._pagers.get, self._clock().timestamp())
        return send_due(self._sinks, store=self._store, ledger=self._ledger, now=self._clock(),
                        turn=self._turn)

    def _turn(self, sink: str, interval_s: float) -> float:
        """The sink's send turn, shared with its alerts (``service.delivery.pace``)."""
        pace = self._paces.get(interval_s)
        if pace is None:
            pace = self._paces[interval_s] = Pace(self._redis, interval_s=interval_s)
        return pace.reserve(sink)

    def _run(self) -> None:
        while not self._stopped.wait(self._tick_s):
            try:
                self.tick()
            except redis_lib.RedisError as error:
                log.warning("digests_unavailable", error=type(error).__name__)
            except Exception:  # a renderer's bug must not end the thread for good
                log.exception("digests_failed")


def start_digest_clock(redis: redis_lib.Redis) -> DigestClock | None:
    """The worker's hook: start the clock when some sink has a digest. A problem here
    is logged and never stops the worker from taking jobs."""
    try:
        clock = DigestClock.for_worker(redis)
    except Exception:
        log.exception("digests_not_started")
        return None
    return clock.start() if clock is not None else None
