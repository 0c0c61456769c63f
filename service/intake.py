"""The intake: how an accepted callback becomes a pending analysis, in one small write.

A callback is on Twilio's clock (15 s for everything, retries included) and the web
process's CPU is the product's throughput, so the route does the least that is
durable: one Lua script that stores the call (``callwatch:call:<CallSid>``, kept a
day, written only if absent, which is what makes a repeated callback a no-op) and
adds its CallSid to ``callwatch:intake`` scored by when its analysis is due. Workers
move due calls into RQ (``workers.intake_mover``); creating an RQ job in the web process
cost half of each request.
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from service import keys
from service.redis_scripts import script

INTAKE_KEY = keys.INTAKE
#: How long a call is remembered, so a repeated callback does not analyse it again.
CALL_TTL_S = 24 * 3600
#: How long a due call handed to one mover is hidden from the others; if that mover dies
#: or loses Redis before ``done``, the call is due again after this. Far longer than a
#: batch takes, short enough that an outage mid-batch delays those calls little. A call
#: due again after it was enqueued is enqueued again (``unique`` stops that only while the
#: first job exists) and analysed twice: a repeated fetch, never a second alert.
CLAIM_S = 10.0

_ADMIT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
  return 1
end
return 0
"""

# Claims the due calls it returns: their scores move ``CLAIM_S`` ahead, so the movers of
# other worker processes, polling the same second, do not enqueue them again.
_DUE = """
local sids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, sid in ipairs(sids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], sid)
end
return sids
"""


call_key = keys.call
#: ``json.dumps`` with these separators would build a new encoder for every call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


class Intake:
    """Admit calls (web) and list the ones whose analysis is due (workers)."""

    def __init__(self, redis: Redis) -> None:
        """``redis``: in the web process, a client whose ``BlockingConnectionPool`` bounds
        its connections (``service.web.REDIS_CONNECTIONS``)."""
        self._redis = redis
        self._admit = script(redis, _ADMIT)
        self._due = script(redis, _DUE)

    def admit(self, call_json: dict[str, Any], *, due_at: float) -> bool:
        """Store the call and its due time; False when the call was already admitted.

        Raises ``redis.RedisError`` when Redis cannot be reached; nothing is written then.
        """
        sid = call_json["call_sid"]
        keys_ = (call_key(sid), INTAKE_KEY)
        args = (_compact_json(call_json), repr(due_at), CALL_TTL_S, sid)
        return bool(self._admit(keys=keys_, args=args))

    def due(self, now: float, limit: int = 100) -> list[tuple[str, dict[str, Any] | None]]:
        """Claim the calls whose analysis is due, oldest first, with their stored callback
        fields: no other ``due`` returns them for ``CLAIM_S``; ``done`` each once it is in RQ."""
        sids = [s.decode() if isinstance(s, bytes) else s
                for s in self._due(keys=[INTAKE_KEY], args=[repr(now), limit,
                                                            repr(now + CLAIM_S)])]
        if not sids:
            return []
        raws = self._redis.mget([call_key(sid) for sid in sids])
        return [(sid, json.loads(raw) if raw else None) for sid, raw in zip(sids, raws, strict=True)]

    def done(self, *call_sids: str) -> None:
        """These calls' analyses are in RQ's hands: take them off the intake (one round trip)."""
        if call_sids:
            self._redis.zrem(INTAKE_KEY, *call_sids)

    def pending(self) -> int:
        return int(self._redis.zcard(INTAKE_KEY))
