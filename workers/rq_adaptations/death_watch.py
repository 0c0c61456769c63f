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
last beat is ``STALE_AFTER_S`` old (one round trip; usually none). For each whose alive
key still names its connections, it asks Redis for its clients (``CLIENT LIST``): a
worker that missed its beat *and* has no connection under its name is dead. One script
removes its alive key and roster entry (only if it still has not beaten) and marks it
dead for ``DEAD_MARK_S`` (``keys.worker_dead``: its delivery leases may be taken over,
``service.delivery.ledger``); its jobs are then recovered at once (``on_dead``), without
the grace a job of a merely silent worker gets.

What is left to the alive key's TTL, as before the watch:
- a worker that missed a beat while it still holds a connection (slow, not dead);
- a worker whose key has already expired (silent for ``ALIVE_TTL_S``: a Redis outage,
  a long pause), or whose connections are unnamed (a Redis that refuses
  ``CLIENT SETNAME``);
- every worker while the watching connection itself is younger than ``RECONNECTED_S``:
  after a Redis restart or failover every process has lost its connections, and a live
  one reconnects only at its next command (its beat: within ``BEAT_EVERY_S``);
- everything, when Redis refuses ``CLIENT LIST`` (logged once, ``death_watch_unavailable``).

A worker cut off from Redis while its host lives (a network partition) is judged dead
after about ``STALE_AFTER_S`` instead of ``ALIVE_TTL_S``: a send it has in flight then may
reach its receiver twice, the window docs/RELIABILITY.md describes. A process forked by a
worker (RQ's scheduler) names its connections as its parent does, so a worker killed
alone while its scheduler lives waits for the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import cast

import redis as redis_lib
import structlog

from service import keys
from service.redis_scripts import script
from workers.rq_adaptations.liveness import ALIVE_TTL_S, BEAT_EVERY_S, alive_key, beat_name

#: A worker whose last beat is this old has missed one (beats come every BEAT_EVERY_S).
STALE_AFTER_S = BEAT_EVERY_S + 1.5
#: A watching connection younger than this may have just come back with Redis: the
#: others may not have reconnected yet.
RECONNECTED_S = BEAT_EVERY_S + 2
#: How long a worker found dead stays marked (longer than any delivery lease).
DEAD_MARK_S = 120

log = structlog.get_logger(__name__)

# KEYS: the roster, then each candidate's alive key, then each one's dead mark; ARGV: the
# stale cutoff, the mark's seconds, then each candidate's name. Buries the candidates that
# have still not beaten; returns them.
_BURY = """
local n = (#KEYS - 1) / 2
local dead = {}
for i = 1, n do
  local name = ARGV[i + 2]
  local beat = redis.call('ZSCORE', KEYS[1], name)
  if beat and tonumber(beat) < tonumber(ARGV[1]) then
    redis.call('DEL', KEYS[1 + i])
    redis.call('ZREM', KEYS[1], name)
    redis.call('SET', KEYS[1 + n + i], '1', 'EX', ARGV[2])
    dead[#dead + 1] = name
  end
end
return dead
"""


class DeathWatch:
    """Looks (``look``) for workers killed since the last look and hands their names to
    ``on_dead``, which recovers their jobs and says whether it could (False: another
    process's recovery was running; the names are handed again at the next look)."""

    def __init__(self, redis: redis_lib.Redis, on_dead: Callable[[list[str]], bool], *,
                 reconnected_s: float = RECONNECTED_S) -> None:
        self._redis = redis
        self._on_dead = on_dead
        self._reconnected_s = reconnected_s
        self._bury = script(redis, _BURY)
        self._refused = False
        self._unrecovered: list[str] = []

    def look(self, now: float | None = None) -> list[str]:
        """The workers found dead by this look (their jobs handed to ``on_dead``)."""
        if self._refused:
            return []
        cutoff = (time.time() if now is None else now) - STALE_AFTER_S
        found = cast(list[bytes], self._redis.zrangebyscore(keys.WORKERS_ALIVE, "-inf", f"({cutoff}"))
        dead = self._bury_unconnected([name.decode() for name in found], cutoff) if found else []
        if dead:
            log.warning("worker_dead", workers=dead, found_by="connections closed")
        self._unrecovered.extend(dead)
        if self._unrecovered and self._on_dead(list(self._unrecovered)):
            self._unrecovered.clear()
        return dead

    def _bury_unconnected(self, stale: Sequence[str], cutoff: float) -> list[str]:
        pipe = self._redis.pipeline(transaction=False)
        for name in stale:
            pipe.get(alive_key(name))
        pipe.client_id()
        pipe.client_list(_type="normal")
        try:
            *values, own_id, clients = pipe.execute()
        except redis_lib.ResponseError as error:  # NOPERM: an ACL without CLIENT LIST
            self._refused = True
            log.warning("death_watch_unavailable", error=str(error), alive_ttl_s=ALIVE_TTL_S)
            return []
        connected = {client.get("name") for client in clients}
        if any(client.get("id") == str(own_id) and int(client.get("age", 0)) < self._reconnected_s
               for client in clients):
            return []  # just reconnected: so may every other process be, any moment now
        names = [beat_name(value) if value is not None else "" for value in values]
        candidates = [worker for worker, name in zip(stale, names, strict=True)
                      if name and name not in connected]
        if not candidates:
            return []
        buried = self._bury(keys=[keys.WORKERS_ALIVE, *(alive_key(w) for w in candidates),
                                  *(keys.worker_dead(w) for w in candidates)],
                            args=[cutoff, DEAD_MARK_S, *candidates])
        return [name.decode() if isinstance(name, bytes) else str(name) for name in buried]
