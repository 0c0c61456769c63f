"""Who is running: each process's live beat and configuration fingerprint, in Redis.

A dead deployment is silent unless something says so: every worker process beats
(``beat``, every few seconds, from ``workers.rq_adaptations.liveness``) into one sorted set scored by
the time of its last beat, and ``/metrics`` shows how many beat recently
(``callwatch_workers``). Each process (worker or web) also writes the fingerprint of
the configuration it runs (``config_fingerprint``: sinks and routing), so processes that
disagree after a rollout show as two ``callwatch_config_info`` series.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import redis as redis_lib

from service import keys

#: A process whose last beat is older than this is not counted.
BEAT_TTL_S = 15.0


class _Sink(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def options(self) -> Mapping[str, Any]: ...


class Configured(Protocol):
    """What a process runs with (``service.routing_file.load.Configuration``)."""

    @property
    def sinks(self) -> Sequence[_Sink]: ...

    @property
    def routing(self) -> object: ...


def config_fingerprint(configuration: Configured) -> str:
    """12 hex digits that change with the sinks (names, types, options) or the routing; a
    truncated hash, so no secret can be read back from it."""
    sinks = [(spec.name, spec.type, dict(spec.options)) for spec in configuration.sinks]
    text = json.dumps(sinks, sort_keys=True, default=str) + repr(configuration.routing)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Roster:
    """Beats and configuration fingerprints of the deployment's processes."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self._redis = redis

    def beat(self, process: str, fingerprint: str, *, worker: bool = True,
             now: float | None = None, pipeline: Any = None) -> None:
        """This process is alive and runs configuration ``fingerprint`` (written into
        ``pipeline`` when given, for the caller to execute)."""
        moment = time.time() if now is None else now
        pipe = self._redis.pipeline(transaction=False) if pipeline is None else pipeline
        if worker:
            pipe.zadd(keys.WORKERS_ALIVE, {process: moment})
            pipe.zremrangebyscore(keys.WORKERS_ALIVE, "-inf", moment - BEAT_TTL_S)
        pipe.hset(keys.CONFIG_FINGERPRINTS, process, f"{fingerprint} {moment:.0f}")
        if pipeline is None:
            pipe.execute()

    def leave(self, process: str) -> None:
        """This process stops: count it no more."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(keys.WORKERS_ALIVE, process)
        pipe.hdel(keys.CONFIG_FINGERPRINTS, process)
        pipe.execute()

    def workers(self, *, now: float | None = None) -> int:
        """Worker processes with a beat in the last ``BEAT_TTL_S``."""
        moment = time.time() if now is None else now
        return int(self._redis.zcount(keys.WORKERS_ALIVE, moment - BEAT_TTL_S, "+inf"))

    def fingerprints(self, *, now: float | None = None) -> dict[str, int]:
        """Configuration fingerprint -> processes running it (beats in the last
        ``BEAT_TTL_S``; older entries are dropped)."""
        moment = time.time() if now is None else now
        raw: dict[bytes, bytes] = self._redis.hgetall(keys.CONFIG_FINGERPRINTS)  # type: ignore[assignment]
        counts: dict[str, int] = {}
        stale = []
        for process, value in raw.items():
            fingerprint, _, at = value.decode().partition(" ")
            if not at or float(at) < moment - BEAT_TTL_S:
                stale.append(process)
                continue
            counts[fingerprint] = counts.get(fingerprint, 0) + 1
        if stale:
            self._redis.hdel(keys.CONFIG_FINGERPRINTS, *stale)
        return counts
