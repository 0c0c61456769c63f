"""Delivering one alert through one sink, exactly once as far as Redis can tell.

``deliver`` is what a delivery job calls. It keeps three things in Redis:

- the **ledger** (``callwatch:delivered:{sink_id}:{alert_id}``, kept 7 days):
  alerts a sink already took. A retried job, a re-analysis or a duplicate job
  finds its alert there and sends nothing;
- a short **lease** (``callwatch:lease:{sink_id}:{alert_id}``, ``SET NX`` with a
  TTL): while one worker is sending, another worker with the same alert backs off
  for the lease's remaining time instead of sending it too. The lease is released
  on any failure so a retry can send at once, and expires by itself if its holder
  dies;
- the **pace** (``callwatch:pace:{key}``): the earliest time the next message may
  go to a rate-limited receiver (Slack takes about one message a second per
  webhook), reserved atomically by a Lua script so the limit holds across every
  worker process. A caller that must wait gets ``DeliveryRetryable`` with the wait
  as ``retry_after`` and reschedules; nothing sleeps.

The one window where a duplicate is still possible: a process killed (or cut off
from Redis) after the receiver got the request but before ``mark_delivered``. Its
lease expires, a retry finds no ledger entry and sends again. Webhook receivers
de-duplicate on ``webhook-id``, which is the alert id on every attempt; Slack has no
such key, so a Slack message can, in that window only, appear twice.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import structlog
from redis import Redis

from service.analysis.alert import Alert
from service.errors import DeliveryPaced, DeliveryRejected, DeliveryRetryable
from service.sinks.base import AlertSink

DEFAULT_LEDGER_TTL_S = 7 * 86400
#: Longer than any sink's worst send (webhook: 3.05 s connect + 10 s read).
DEFAULT_LEASE_S = 30.0

log = structlog.get_logger()

# Release a lease only if it is still ours (it may have expired and been re-taken).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Reserve the next send slot: 0 when free now (and take it), else the wait.
# Numbers travel as strings because Redis truncates Lua numbers to integers.
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free > now then
  return tostring(next_free - now)
end
redis.call('SET', KEYS[1], tostring(now + interval), 'PX', math.ceil(interval * 1000) + 1000)
return '0'
"""

# Book the next free send slot: slots are ``interval`` apart, in the order asked.
_BOOK = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local booked = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, booked)
local ttl = math.ceil((slot - now + interval) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', ttl)
return tostring(slot - now)
"""

# Push a key's next free time to at least ARGV[1] (the receiver said "not before").
_PAUSE = """
local until_ = tonumber(ARGV[1])
local ttl = math.ceil(tonumber(ARGV[2]) * 1000) + 1000
for _, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '0')
  if until_ > current then
    redis.call('SET', key, tostring(until_), 'PX', ttl)
  end
end
return 1
"""


class DeliveryLedger:
    """Which alerts each sink already took, and short leases on the ones in flight."""

    def __init__(self, redis: Redis, *, ttl_s: int = DEFAULT_LEDGER_TTL_S) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._release = redis.register_script(_RELEASE)
        self._owner = uuid.uuid4().hex

    @staticmethod
    def delivered_key(sink_id: str, alert_id: str) -> str:
        return f"callwatch:delivered:{sink_id}:{alert_id}"

    @staticmethod
    def lease_key(sink_id: str, alert_id: str) -> str:
        return f"callwatch:lease:{sink_id}:{alert_id}"

    def is_delivered(self, sink_id: str, alert_id: str) -> bool:
        return bool(self._redis.exists(self.delivered_key(sink_id, alert_id)))

    def mark_delivered(self, sink_id: str, alert_id: str) -> None:
        self._redis.set(self.delivered_key(sink_id, alert_id), "1", ex=self._ttl_s)

    def claim(self, sink_id: str, alert_id: str, *, lease_s: float) -> bool:
        """Take the lease on this alert for this sink; False if someone holds it."""
        return bool(self._redis.set(self.lease_key(sink_id, alert_id), self._token(),
                                    nx=True, px=max(1, int(lease_s * 1000))))

    def release(self, sink_id: str, alert_id: str) -> None:
        """Drop the lease if this process and thread still hold it."""
        self._release(keys=[self.lease_key(sink_id, alert_id)], args=[self._token()])

    def lease_remaining(self, sink_id: str, alert_id: str) -> float:
        """Seconds until someone else's lease expires (0.0 if there is none)."""
        ttl_ms = self._redis.pttl(self.lease_key(sink_id, alert_id))
        return max(0.0, ttl_ms / 1000) if ttl_ms and ttl_ms > 0 else 0.0

    def _token(self) -> str:
        # Per thread as well as per process: threads may share one ledger.
        return f"{self._owner}:{threading.get_ident()}"


class Pace:
    """At most one send per ``interval_s`` per key, across every process.

    Two steps keep a burst orderly. ``book`` hands each waiting alert its own slot,
    ``interval_s`` after the previous one, so a burst of 200 alerts is spread over
    200 slots and each delivery job is rescheduled once, to its slot, instead of
    every job waking each second to compete. ``reserve`` is the check at send time
    (the scheduler can run a job late, bunching slots): it takes the send turn when
    the last send was at least ``interval_s`` ago, else says how long to wait.
    """

    def __init__(self, redis: Redis, *, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._reserve = redis.register_script(_RESERVE)
        self._book = redis.register_script(_BOOK)
        self._pause = redis.register_script(_PAUSE)

    def book(self, key: str) -> float:
        """Take the next free slot for ``key``; seconds until it (0.0: now)."""
        return float(self._book(keys=[f"callwatch:pace-book:{key}"], args=self._args()))

    def reserve(self, key: str) -> float:
        """0.0 if the caller may send now (the turn is now taken), else seconds to wait."""
        return float(self._reserve(keys=[f"callwatch:pace:{key}"], args=self._args()))

    def pause(self, key: str, seconds: float) -> None:
        """The receiver said wait (Slack's 429): nothing for ``key`` goes out before then.

        Both the send turn and the booking line move, so alerts already booked inside
        the window wait too, and new ones line up after it.
        """
        now = float(self._clock())
        self._pause(keys=[f"callwatch:pace:{key}", f"callwatch:pace-book:{key}"],
                    args=[repr(now + seconds), repr(float(seconds))])

    def _args(self) -> list[str]:
        return [repr(float(self._clock())), repr(float(self._interval_s))]


def deliver(alert: Alert, sink: AlertSink, *, ledger: DeliveryLedger, pace: Pace | None,
            lease_s: float = DEFAULT_LEASE_S, booked: bool = False, inline_wait_s: float = 0.0,
            sleep: Callable[[float], None] = time.sleep) -> str:
    """Send ``alert`` through ``sink`` unless it already went: ``delivered`` or ``duplicate``.

    With a ``pace``, a caller that has not ``booked`` a slot yet books one; waits up
    to ``inline_wait_s`` are slept here, longer ones raise ``DeliveryPaced`` with
    ``booked`` set, so the caller comes back at its slot without booking again.
    Raises ``DeliveryPaced`` (a ``DeliveryRetryable``; nothing was sent) with the
    wait as ``retry_after`` when paced or when another worker holds the lease;
    ``DeliveryRetryable`` when the receiver asked to retry (``retry_after`` when it
    said how long); ``DeliveryRejected`` when it refused for good.
    """
    sink_id, alert_id = sink.sink_id, alert.alert_id
    fields = {"sink_id": sink_id, "alert_id": alert_id, "call_sid": alert.call.call_sid}
    if ledger.is_delivered(sink_id, alert_id):
        log.info("alert_delivery_duplicate", **fields)
        return "duplicate"
    if not ledger.claim(sink_id, alert_id, lease_s=lease_s):
        wait = ledger.lease_remaining(sink_id, alert_id) or 1.0
        log.info("alert_delivery_retry", reason="in_flight", retry_after=wait, **fields)
        raise DeliveryPaced(f"{sink_id} is already sending {alert_id}", retry_after=wait)
    try:
        # Re-check under the lease: another worker may have finished between the two.
        if ledger.is_delivered(sink_id, alert_id):
            log.info("alert_delivery_duplicate", **fields)
            return "duplicate"
        if pace is not None:
            _wait_for_turn(pace, sink_id, booked=booked, inline_wait_s=inline_wait_s,
                           sleep=sleep, fields=fields)
        try:
            sink.send(alert)
        except DeliveryRetryable as err:
            log.warning("alert_delivery_retry", reason="receiver", error=str(err),
                        status=err.status, retry_after=err.retry_after, **fields)
            if pace is not None and err.retry_after:
                pace.pause(sink_id, err.retry_after)
            raise
        except DeliveryRejected as err:
            log.error("alert_delivery_rejected", reason=err.reason, status=err.status,
                      error=str(err), **fields)
            raise
        ledger.mark_delivered(sink_id, alert_id)
    finally:
        ledger.release(sink_id, alert_id)
    log.info("alert_delivered", **fields)
    return "delivered"


def _wait_for_turn(pace: Pace, sink_id: str, *, booked: bool, inline_wait_s: float,
                   sleep: Callable[[float], None], fields: dict[str, str]) -> None:
    """Return when this send may go; raise ``DeliveryPaced`` when the wait is long."""
    if not booked:
        _wait_or_raise(pace.book(sink_id), inline_wait_s, sleep, sink_id, fields)
    for _ in range(4):
        wait = pace.reserve(sink_id)
        if wait <= 0:
            return
        if wait > inline_wait_s:
            # The line moved (a receiver's pause, late jobs): queue up again at its end.
            _wait_or_raise(pace.book(sink_id), inline_wait_s, sleep, sink_id, fields)
            continue
        sleep(wait)
    raise DeliveryPaced(f"{sink_id} is busy", retry_after=max(inline_wait_s, 1.0), booked=True)


def _wait_or_raise(wait: float, inline_wait_s: float, sleep: Callable[[float], None],
                   sink_id: str, fields: dict[str, str]) -> None:
    if wait > inline_wait_s:
        log.info("alert_delivery_retry", reason="paced", retry_after=wait, **fields)
        raise DeliveryPaced(f"{sink_id} is paced", retry_after=wait, booked=True)
    if wait > 0:
        sleep(wait)
