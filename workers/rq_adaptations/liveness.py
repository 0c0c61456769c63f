"""Fast recovery of jobs whose worker died: our own heartbeat, checked every maintenance pass.

What this changes in RQ, and why: RQ finds a job abandoned only when its execution's
heartbeat expires. A forking worker renews it every ``job_monitoring_interval`` with a
TTL of that interval plus 60 s; RQ's in-process ``SimpleWorker`` (the default here)
sends none while a job runs and registers it with the job's whole timeout plus 60 s
(240 s for an analysis). No RQ setting shortens that (``worker_ttl`` and
``maintenance_interval`` only decide when the clean-up looks). So every callwatch worker
process writes ``callwatch:worker-alive:<name>`` every ``BEAT_EVERY_S`` with a
``ALIVE_TTL_S`` expiry. During maintenance a worker looks at the jobs RQ says are
running; one whose worker's key is gone has lost its worker, so its execution's score in
RQ's started registry is set to 0 (expired) and RQ's own clean-up retries it
(``CRASH_RETRY``) exactly as it would have minutes later.

RQ registers a job's execution in the started registry one round trip before it marks the
job ``started`` with its worker's name. A job whose worker died (or lost Redis) between
the two is registered but still ``queued``, nameless: RQ's clean-up would drop its entry
without running it again, so here its execution names the worker, and once that worker
stops beating the entry is swapped for a place at the front of the job's queue
(``workers.rq_adaptations.put_back``: two workers recovering it at once put it back once).

Re-running a job is safe by design: successors are enqueued ``unique``, deliveries
are remembered per sink and guarded by a lease, so a job wrongly judged orphaned
(for instance one run by a worker of an older release, which sends no heartbeat)
costs a repeated fetch, never a second alert.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis as redis_lib
import structlog
from rq import Queue
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import now

from service import keys
from service.redis_scripts import RELEASE_IF_HELD, script
from service.roster import Roster
from workers.rq_adaptations.put_back import put_back
from workers.rq_adaptations.scheduler_locks import read_locks, release_stale

ALIVE_TTL_S = 10
BEAT_EVERY_S = 3

log = structlog.get_logger(__name__)


def alive_key(worker_name: str) -> str:
    return keys.worker_alive(worker_name)


#: The alive key's value when the process's connections carry no name of their own.
UNNAMED = "1"


def beat_name(value: bytes | str) -> str:
    """The connection name an alive key's value gives ("" when the connections are unnamed):
    ``workers.rq_adaptations.death_watch`` looks for it among Redis's clients."""
    text = value.decode() if isinstance(value, bytes) else value
    return "" if text == UNNAMED else text


class SchedulerLockWatch(Protocol):
    """What the beat asks its worker about RQ's scheduler locks
    (``workers.rq_adaptations.scheduler_locks.WatchesSchedulerLocks``)."""

    def locks_to_watch(self) -> list[str]: ...

    def stale_locks_released(self, queue_names: list[str]) -> None: ...


class Heartbeat:
    """A daemon thread that keeps this worker's alive key fresh until ``stop()``; in the
    same round trip it beats into the deployment's roster (``callwatch_workers``,
    ``callwatch_config_info``), renews RQ's registration of the worker (``renew``, which
    queues its commands on the beat's pipeline) and reads RQ's scheduler locks for
    ``locks``."""

    def __init__(self, redis: redis_lib.Redis, worker_name: str,
                 fingerprint: str = "", *, locks: SchedulerLockWatch | None = None,
                 renew: Callable[[Any], None] | None = None,
                 connection_name: Callable[[], str | None] = lambda: None) -> None:
        self._redis = redis
        self._connection_name = connection_name
        self._name = worker_name
        self._fingerprint = fingerprint
        self._locks = locks
        self._renew = renew
        self._roster = Roster(redis)
        self._key = alive_key(worker_name)
        self._dead_key = keys.worker_dead(worker_name)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(redis_lib.RedisError):
            self._redis.delete(self._key)
            self._roster.leave(self._name)

    def _run(self) -> None:
        while not self._stopped.wait(BEAT_EVERY_S):
            self._beat()

    def _beat(self) -> None:
        # While Redis is down nothing can be recovered or lost; beat again later.
        with contextlib.suppress(redis_lib.RedisError):
            locks = self._locks
            watched = locks.locks_to_watch() if locks is not None else []
            # One transaction: the death watch's check of the roster and its removal of the
            # alive key never fall between the two writes.
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(self._key, self._connection_name() or UNNAMED, ex=ALIVE_TTL_S)
            pipe.delete(self._dead_key)  # alive after all (cut off from Redis a while)
            self._roster.beat(self._name, self._fingerprint, pipeline=pipe)
            if self._renew is not None and not self._stopped.is_set():  # not past RQ's death
                self._renew(pipe)
            read_locks(pipe, watched)
            answers = pipe.execute()
            if locks is not None and watched:
                self._release_stale(locks, watched, answers[-2 * len(watched):])

    def _release_stale(self, locks: SchedulerLockWatch, watched: list[str],
                       answers: list[object]) -> None:
        """The beat's look at the scheduler locks: a failure other than Redis's is logged
        and never stops the beat (its alive key is what keeps this worker's jobs its own)."""
        try:
            released = release_stale(self._redis, watched, answers)
        except redis_lib.RedisError:
            raise
        except Exception:
            log.exception("scheduler_lock_watch_failed")
            return
        if released:
            locks.stale_locks_released(released)


#: The longest one recovery may hold ``keys.RECOVERY_TURN`` if its process dies in it.
RECOVERY_TURN_S = 30


@contextlib.contextmanager
def recovery_turn(redis: redis_lib.Redis) -> Iterator[bool]:
    """Whether this process may recover dead workers' jobs now (True), until the block
    ends: one recovery at a time in the deployment, as RQ's clean-up of an abandoned job
    (its retry, its failure callbacks) must not run twice at once for the same job."""
    token = uuid.uuid4().hex
    if not redis.set(keys.RECOVERY_TURN, token, nx=True, ex=RECOVERY_TURN_S):
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(redis_lib.RedisError):
            script(redis, RELEASE_IF_HELD)(keys=[keys.RECOVERY_TURN], args=[token])


def recover_orphaned_jobs(redis: redis_lib.Redis, queues: list[Queue], *,
                          clock: Callable[[], datetime] = now,
                          dead: Collection[str] = ()) -> list[str]:
    """Hand jobs whose worker stopped beating to RQ's abandoned-job clean-up, and put back
    those it never marked started; return their ids. A job younger than ``ALIVE_TTL_S``
    is left for a later pass unless its worker is one of ``dead`` (found dead by
    ``workers.rq_adaptations.death_watch``, not only silent)."""
    orphaned: list[str] = []
    grace = timedelta(seconds=ALIVE_TTL_S)
    registries = [StartedJobRegistry(queue=queue) for queue in queues]
    pipe = redis.pipeline(transaction=False)  # every queue's running jobs in one round trip
    for registry in registries:
        pipe.zrange(registry.key, 0, -1)
    running: list[list[bytes]] = pipe.execute()
    for queue, registry, members in zip(queues, registries, running, strict=True):
        expired_any = False
        for member in members:
            entry = member.decode()
            job = queue.fetch_job(entry.split(":", 1)[0])
            if job is not None and job.get_status(refresh=False) == JobStatus.QUEUED:
                if _put_back_unstarted(redis, queue, job, entry, clock() - grace, dead):
                    orphaned.append(job.id)
                continue
            if job is None or not job.worker_name or redis.exists(alive_key(job.worker_name)):
                continue
            if (job.worker_name not in dead and job.started_at is not None
                    and clock() - job.started_at < grace):
                continue
            redis.zadd(registry.key, {member: 0}, xx=True)
            orphaned.append(job.id)
            expired_any = True
            log.warning("job_orphaned", job_id=job.id, worker=job.worker_name)
        if expired_any:
            registry.cleanup()
    return orphaned


def _put_back_unstarted(redis: redis_lib.Redis, queue: Queue, job: Job, entry: str,
                        before: datetime, dead: Collection[str]) -> bool:
    """A job registered ``before`` that RQ never marked started, whose worker (named by the
    execution) has stopped beating: back to the front of its queue, its entry removed;
    True if put back."""
    job_id, _, execution_id = entry.partition(":")
    try:
        execution = Execution.fetch(execution_id, job_id, connection=redis)
    except ValueError:  # expired with its execution: nothing says whose it was
        return False
    worker = execution.worker_name
    if (not worker or redis.exists(alive_key(worker))
            or (worker not in dead and execution.created_at > before)):
        return False
    if not put_back(redis, queue, job_id, [entry]):
        return False  # another worker put it back first
    log.warning("job_orphaned", job_id=job.id, worker=worker, started=False)
    return True
