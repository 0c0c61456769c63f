"""Finding a killed worker in seconds: a missed beat and no Redis connection left.

What this changes, and why: a worker process's jobs are recovered once its alive key
(``workers.rq_adaptations.liveness``) has expired, up to ``ALIVE_TTL_S`` after its last
beat, and the maintenance pass that looks comes up to ``MAINTENANCE_INTERVAL_S`` later:
a delivery in flight in a container killed with ``SIGKILL`` reached Slack 12-17 s late
(the storm drill's unrelated alerts, against 10 s). The TTL is long for a reason: a
process that is only slow (a busy machine, a long pause of its beat thread) must not
have its job run a second time.

A killed process, though, says so at once: the kernel closes its sockets and Redis drops
its connections. Each beat writes the name its process's connections carry
(``pop_wake.ConnectionNamer``) into its alive key. Once a second, on the container's
turn (``workers.intake_mover``), :class:`DeathWatch` reads the roster's workers whose
last beat is ``STALE_AFTER_S`` old (one round trip; usually none). For each, it asks
Redis for its clients (``CLIENT LIST``): a worker that missed its beat *and* has no
connection under its name is dead. Its alive key and roster entry are removed in one
script (only if it still has not beaten), and its jobs are recovered then
(``on_dead``), without the grace a job of a merely silent worker gets.

A worker that missed a beat while it still holds a connection (slow, not dead), or whose
connections are unnamed (a Redis that refuses ``CLIENT SETNAME``) keeps the alive key's
TTL. A Redis that refuses ``CLIENT LIST`` is logged once (``death_watch_unavailable``);
recovery then waits for the TTL, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import cast

import redis as redis_lib
import structlog

from service import keys
from service.redis_scripts import script
from workers.rq_adaptations.liveness import BEAT_EVERY_S, alive_key, beat_name

#: A worker whose last beat is this old has missed one (beats come every BEAT_EVERY_S).
STALE_AFTER_S = BEAT_EVERY_S + 1.5

log = structlog.get_logger(__name__)

# KEYS: the roster, then each candidate's alive key; ARGV: the stale cutoff, then each
# candidate's name. Removes the candidates that have still not beaten; returns them.
_BURY = """
local dead = {}
for i = 2, #KEYS do
  local name = ARGV[i]
  local beat = redis.call('ZSCORE', KEYS[1], name)
  if beat and tonumber(beat) < tonumber(ARGV[1]) then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], name)
    dead[#dead + 1] = name
  end
end
return dead
"""


class DeathWatch:
    """Looks (``look``) for workers killed since the last look and hands their names to
    ``on_dead``, which recovers their jobs."""

    def __init__(self, redis: redis_lib.Redis, on_dead: Callable[[list[str]], object]) -> None:
        self._redis = redis
        self._on_dead = on_dead
        self._bury = script(redis, _BURY)
        self._refused = False

    def look(self, now: float | None = None) -> list[str]:
        """The workers found dead by this look (their jobs handed to ``on_dead``)."""
        cutoff = (time.time() if now is None else now) - STALE_AFTER_S
        found = cast(list[bytes], self._redis.zrangebyscore(keys.WORKERS_ALIVE, "-inf", f"({cutoff}"))
        stale = [name.decode() for name in found]
        if not stale or self._refused:
            return []
        dead = self._bury_unconnected(stale, cutoff)
        if dead:
            log.warning("worker_dead", workers=dead, found_by="connections closed")
            self._on_dead(dead)
        return dead

    def _bury_unconnected(self, stale: Sequence[str], cutoff: float) -> list[str]:
        pipe = self._redis.pipeline(transaction=False)
        for name in stale:
            pipe.get(alive_key(name))
        pipe.client_list(_type="normal")
        try:
            *names, clients = pipe.execute(raise_on_error=True)
        except redis_lib.ResponseError as error:  # NOPERM: an ACL without CLIENT LIST
            self._refused = True
            log.warning("death_watch_unavailable", error=str(error), alive_ttl_s=STALE_AFTER_S)
            return []
        connected = {client.get("name") for client in clients}
        # A key already gone is the TTL's: it is dead by the old rule, recovered now too.
        candidates = [worker for worker, name in zip(stale, names, strict=True)
                      if name is None or (beat_name(name) and beat_name(name) not in connected)]
        if not candidates:
            return []
        buried = self._bury(keys=[keys.WORKERS_ALIVE, *(alive_key(w) for w in candidates)],
                            args=[cutoff, *candidates])
        return [name.decode() if isinstance(name, bytes) else str(name) for name in buried]
