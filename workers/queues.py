"""Queues, job ids and the scheduling policy: the one place that knows RQ's enqueue API.

Job ids come from the data (``analyze-CA…``), and every enqueue is ``unique``, so a
re-run job collapses into its successor while that is scheduled, queued or running
(RQ checks and writes atomically in one Lua script). A finished job is deleted at once
(``result_ttl=0``: neither its hash nor a result stream stays in Redis): a repeated
callback is already a no-op through the call's record in the intake, and a repeated
delivery through the delivery ledger, so a job re-run after its successor finished
costs a repeated fetch, never a second alert. Failed jobs stay a week in RQ's failed
registry, for ``rq requeue``.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import WatchError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from service import keys
from service.delivery.incidents.events import message_id
from workers.rq_adaptations.unique_enqueue import OneTripUniqueQueue

ANALYSIS_QUEUE = "analysis"
DELIVERY_QUEUE = "delivery"
QUEUES = (ANALYSIS_QUEUE, DELIVERY_QUEUE)
#: A delivery that a worker could not send because it does not know the sink waits in the
#: sink's own queue, ``delivery-for-<sink>``, which only workers that know the sink listen
#: on (a rollout's new workers, the workers with the routing file).
SINK_QUEUE_PREFIX = "delivery-for-"


def sink_queue_name(sink_id: str) -> str:
    """The queue only workers that know ``sink_id`` listen on."""
    return f"{SINK_QUEUE_PREFIX}{sink_id}"
#: The delivery job's function (``workers.jobs``).
DELIVER_FUNC = "workers.jobs.deliver_alert"

#: Longest an analysis may run (2 edges x pages x in-process retries fit well inside).
ANALYSIS_JOB_TIMEOUT_S = 180
#: Longest a delivery may run (one HTTP request with its timeouts).
DELIVERY_JOB_TIMEOUT_S = 60
#: Finished jobs are not kept (the intake record and the delivery ledger de-duplicate).
RESULT_TTL_S = 0
#: Finished incident checks are kept this long: their id makes each timer run once.
INCIDENT_CHECK_RESULT_TTL_S = 3600
#: Failed jobs stay in the failed registry this long (RQ's default is a year).
FAILURE_TTL_S = 7 * 24 * 3600
#: Retries for a job whose worker died under it (RQ's abandoned-job recovery).
CRASH_RETRY = Retry(max=3, interval=[1, 10, 30])


def queue(name: str, redis: Redis) -> Queue:
    """A queue with the JSON serializer every process uses, whose unique enqueue is one
    round trip (``workers.rq_adaptations.unique_enqueue``)."""
    return OneTripUniqueQueue(name, connection=redis, serializer=JSONSerializer)


def analysis_job_id(call_sid: str, recheck: int = 0, attempt: int = 0, stage: str = "") -> str:
    """``analyze-CA…`` for the first analysis; suffixes for re-checks, retries and a
    phone leg's later stages (``-listed``, ``-summary``: service.analysis.legs)."""
    suffix = ((f"-{stage}" if stage else "") + (f"-r{recheck}" if recheck else "")
              + (f"-a{attempt}" if attempt else ""))
    return f"analyze-{call_sid}{suffix}"


def delivery_job_id(sink_id: str, alert_id: str, hop: int = 0) -> str:
    """``deliver-<sink>-<alert>``; each rescheduling (retry or pace) adds one ``hop``."""
    return f"deliver-{sink_id}-{alert_id}" + (f"-{hop}" if hop else "")


def schedule_unique(redis: Redis, queue_name: str, func: str,
                    args: tuple[Any, ...], *, job_id: str, delay_s: float,
                    timeout_s: int, result_ttl_s: int | None = None) -> bool:
    """Enqueue ``func(*args)`` (a dotted path) after ``delay_s`` under ``job_id``; False if it exists.

    Raises ``redis.RedisError`` when Redis cannot be reached; nothing is written then.
    RQ keeps due times in whole seconds, rounding down; the due time is rounded up
    here instead, so a job never runs before ``delay_s`` has passed (a receiver's
    ``Retry-After`` is a floor, not a suggestion).
    """
    q = queue(queue_name, redis)
    options: dict[str, Any] = {
        # The description is what RQ logs for the job: the id, not the arguments
        # (they hold phone numbers and whole alerts).
        "job_id": job_id, "description": job_id, "unique": True, "job_timeout": timeout_s,
        "result_ttl": RESULT_TTL_S if result_ttl_s is None else result_ttl_s,
        "failure_ttl": FAILURE_TTL_S, "retry": CRASH_RETRY,
    }
    try:
        if delay_s > 0:
            due = datetime.fromtimestamp(math.ceil(time.time() + delay_s), UTC)
            q.enqueue_at(due, func, *args, **options)
        else:
            q.enqueue(func, *args, **options)
    except DuplicateJobError:
        return False
    return True


def schedule_analysis(redis: Redis, call_json: dict[str, Any], *, delay_s: float,
                      recheck: int = 0, attempt: int = 0, stage: str = "") -> bool:
    """Schedule the analysis of one call; False when it is already scheduled or done."""
    # The stage goes in the arguments only when set, so first analyses keep their shape.
    args = (call_json, recheck, attempt, stage) if stage else (call_json, recheck, attempt)
    return schedule_unique(
        redis, ANALYSIS_QUEUE, "workers.jobs.analyze_call", args,
        job_id=analysis_job_id(call_json["call_sid"], recheck, attempt, stage),
        delay_s=delay_s, timeout_s=ANALYSIS_JOB_TIMEOUT_S,
    )


def schedule_delivery(redis: Redis, sink_id: str, envelope: dict[str, Any], *,
                      delay_s: float = 0, attempt: int = 0, hop: int = 0,
                      booked: bool = False, waiting_since: float | None = None) -> bool:
    """Schedule one message's delivery (an alert, an incident event) through one sink; False
    when already scheduled or done."""
    queue_name = DELIVERY_QUEUE
    if waiting_since is not None:  # for a worker that knows the sink: in that sink's queue
        queue_name = sink_queue_name(sink_id)
        redis.sadd(keys.SINK_QUEUES, sink_id)
    return schedule_unique(
        redis, queue_name, DELIVER_FUNC,
        (sink_id, envelope, attempt, hop, booked) + ((waiting_since,) if waiting_since else ()),
        job_id=delivery_job_key(sink_id, envelope, hop),
        delay_s=delay_s, timeout_s=DELIVERY_JOB_TIMEOUT_S,
    )


def incident_check_job_id(incident_id: str, due: float) -> str:
    """``check-<incident>-<due epoch second>``: one timer run per incident and due time."""
    return f"check-{incident_id}-{int(due)}"


def schedule_incident_check(redis: Redis, incident_id: str, due: float) -> bool:
    """Schedule an incident's timer step at epoch second ``due``; False when already scheduled
    or run (a finished check is kept ``INCIDENT_CHECK_RESULT_TTL_S``: few, one per incident
    and due time, and its id is what makes the timer run once)."""
    return schedule_unique(
        redis, DELIVERY_QUEUE, "workers.jobs.check_incident", (incident_id, due),
        job_id=incident_check_job_id(incident_id, due), delay_s=max(0.0, due - time.time()),
        timeout_s=DELIVERY_JOB_TIMEOUT_S, result_ttl_s=INCIDENT_CHECK_RESULT_TTL_S,
    )


def delivery_sink(job: Job) -> str | None:
    """The sink a delivery job sends to; None for any other job."""
    if job.func_name != DELIVER_FUNC or not job.args:
        return None
    return str(job.args[0])


def delivery_job_key(sink_id: str, envelope: dict[str, Any], hop: int = 0) -> str:
    """The delivery job id a message gets for a sink (also its slot's name when sent inline).
    Job ids take [A-Za-z0-9_-]: an incident event's ``inc_…:3`` becomes ``inc_…-3``."""
    return delivery_job_id(sink_id, message_id(envelope).replace(":", "-"), hop)


def record_failed_delivery(redis: Redis, sink_id: str, envelope: dict[str, Any],
                           reason: str) -> None:
    """A delivery sent inline (no job of its own) that failed for good: put it in RQ's failed
    registry as its job would have been, so ``rq requeue`` can send it again."""
    q = queue(DELIVERY_QUEUE, redis)
    job_id = delivery_job_key(sink_id, envelope)
    job = q.create_job(DELIVER_FUNC, args=(sink_id, envelope, 0, 0, False), job_id=job_id,
                       description=job_id, timeout=DELIVERY_JOB_TIMEOUT_S,
                       result_ttl=RESULT_TTL_S, failure_ttl=FAILURE_TTL_S,
                       status=JobStatus.FAILED)
    with redis.pipeline() as pipe:
        job.save(pipeline=pipe)
        q.failed_job_registry.add(job, ttl=FAILURE_TTL_S, exc_string=f"StepFailed: {reason}",
                                  pipeline=pipe)
        pipe.execute()


def waiting_sinks(redis: Redis) -> list[str]:
    """The sinks that have (or had) a ``delivery-for-<sink>`` queue, sorted."""
    raw: set[bytes] = redis.smembers(keys.SINK_QUEUES)  # type: ignore[assignment]
    return sorted(name.decode() for name in raw)


def release_unknown_sink_waits(redis: Redis, known: set[str], *, now: float,
                               longest_s: float) -> list[str]:
    """Deliveries that waited ``longest_s`` in the queue of a sink this worker does not know
    go back to the delivery queue, where the step fails them (``unknown_sink``); return
    their job ids. (Maintenance: any worker, so they fail even if none knows the sink.)"""
    moved = []
    for sink in waiting_sinks(redis):
        if sink in known:
            continue
        waiting = queue(sink_queue_name(sink), redis)
        for job in waiting.get_jobs(0, 20):
            since = job.args[5] if len(job.args) > 5 and job.args[5] else now
            if now - float(since) < longest_s or not move_to_delivery(redis, waiting, job):
                break
            moved.append(job.id)
    return moved


def move_to_delivery(redis: Redis, waiting: Queue, job: Job) -> bool:
    """``job`` from ``waiting`` to the front of the delivery queue in one transaction (a
    worker killed in between leaves it where it was); False, moving nothing, when it is no
    longer there (a worker that knows the sink took it) or the queue kept changing."""
    delivery = queue(DELIVERY_QUEUE, redis)
    with redis.pipeline() as pipe:
        for _ in range(3):  # the queue may change under the WATCH (a delivery joins it)
            try:
                pipe.watch(waiting.key)
                if pipe.lpos(waiting.key, job.id) is None:
                    return False
                pipe.multi()
                pipe.lrem(waiting.key, 1, job.id)
                delivery.enqueue_job(job, pipeline=pipe, at_front=True)
                pipe.execute()
                return True
            except WatchError:
                continue
    return False
