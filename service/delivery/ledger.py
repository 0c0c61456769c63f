"""Which alerts each sink already took, and short leases on the ones in flight.

Two things in Redis, per sink and alert:

- the **ledger** (``delivered`` key, kept 7 days): alerts a sink already took. A
  retried job, a re-analysis or a duplicate job finds its alert there and sends
  nothing;
- a short **lease** (``SET NX`` with a TTL): while one worker is sending, another
  worker with the same alert backs off for the lease's remaining time instead of
  sending it too. The lease is released on any failure so a retry can send at
  once, and expires by itself if its holder dies. A lease names its holder's worker
  (``holder``): once that worker is found killed (``keys.worker_dead``, written by
  ``workers.rq_adaptations.death_watch`` on the evidence of its closed connections, not
  merely a silent beat), the recovered job takes the lease over at once instead of
  waiting out its ``DEFAULT_LEASE_S``.

The one window where a duplicate is still possible: a process killed (or cut off
from Redis) after the receiver got the request but before ``mark_delivered``. Its
lease expires, a retry finds no ledger entry and sends again. Webhook receivers
de-duplicate on ``webhook-id``, which is the alert id on every attempt; Slack has no
such key, so a Slack message can, in that window only, appear twice.
"""

from __future__ import annotations

import threading
import uuid

from redis import Redis

from service import keys
from service.redis_scripts import RELEASE_IF_HELD, script

DEFAULT_LEDGER_TTL_S = 7 * 86400
#: Longer than any sink's worst send (its whole deadline).
DEFAULT_LEASE_S = 30.0

# Take the lease unless the sink already took the message, in one round trip; a lease
# whose holder's worker was found killed is taken over.
# KEYS: delivered, lease; ARGV: token, lease ms, the dead-worker keys' prefix. Returns -1
# delivered, 0 leased to us, else the ms left on someone else's lease. (The dead-worker key
# is named here, not in KEYS: it is known only once the lease is read; callwatch's Redis is
# one server, never a cluster.)
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local worker = string.match(redis.call('GET', KEYS[2]) or '', '^(.*)/')
if worker and worker ~= '' and redis.call('EXISTS', ARGV[3] .. worker) == 1 then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return 0
end
return math.max(1, redis.call('PTTL', KEYS[2]))
"""

# Record the message as taken and let go of our lease, in one round trip.
# KEYS: delivered, lease; ARGV: token, ledger ttl s.
_FINISH = """
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

#: ``DeliveryLedger.take``: the sink already took the message.
ALREADY_DELIVERED = -1.0


#: The dead-worker keys' prefix, for ``_TAKE``.
_DEAD_PREFIX = keys.worker_dead("")
#: Ends the holder's worker name in a lease's token (the last one in it: the rest is hex).
HOLDER_END = "/"


class DeliveryLedger:
    """Which alerts each sink already took, and short leases on the ones in flight.
    ``holder``: the name of the worker this process runs as, so that its leases can be
    taken over once it is found killed ("": none; such a lease is only ever waited out)."""

    def __init__(self, redis: Redis, *, ttl_s: int = DEFAULT_LEDGER_TTL_S, holder: str = "") -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._holder = holder
        self._release = script(redis, RELEASE_IF_HELD)  # the lease, if still ours
        self._take = script(redis, _TAKE)
        self._finish = script(redis, _FINISH)
        self._owner = uuid.uuid4().hex

    delivered_key = staticmethod(keys.delivered)
    lease_key = staticmethod(keys.lease)

    def is_delivered(self, sink_id: str, alert_id: str) -> bool:
        return bool(self._redis.exists(self.delivered_key(sink_id, alert_id)))

    def mark_delivered(self, sink_id: str, alert_id: str) -> None:
        self._redis.set(self.delivered_key(sink_id, alert_id), "1", ex=self._ttl_s)

    def release(self, sink_id: str, alert_id: str) -> None:
        """Drop the lease if this process and thread still hold it."""
        self._release(keys=[self.lease_key(sink_id, alert_id)], args=[self._token()])

    def take(self, sink_id: str, alert_id: str, *, lease_s: float) -> float:
        """Whether the sink took the message, and else the lease, in one round trip:
        ``ALREADY_DELIVERED``; 0.0 when the lease is now ours; else the seconds left on
        someone else's lease."""
        left = int(self._take(keys=[self.delivered_key(sink_id, alert_id),  # type: ignore[arg-type]
                                    self.lease_key(sink_id, alert_id)],
                              args=[self._token(), max(1, int(lease_s * 1000)),
                                    _DEAD_PREFIX]))
        return ALREADY_DELIVERED if left < 0 else left / 1000

    def finish(self, sink_id: str, alert_id: str) -> None:
        """``mark_delivered`` and ``release`` in one round trip."""
        self._finish(keys=[self.delivered_key(sink_id, alert_id), self.lease_key(sink_id, alert_id)],
                     args=[self._token(), self._ttl_s])

    def _token(self) -> str:
        # Per thread as well as per process: threads may share one ledger.
        return f"{self._holder}{HOLDER_END}{self._owner}:{threading.get_ident()}"
