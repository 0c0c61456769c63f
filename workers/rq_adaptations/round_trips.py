"""RQ's per-job bookkeeping writes, cut to what callwatch's jobs need.

What this changes in RQ, and why: around every job RQ's loop renews the worker's
registration (``heartbeat``: three separate round trips after each job), looks for
``rq suspend`` (one more), writes the worker's state ``idle`` after the job and again as it
waits for the next, and beats the job once more when its code has returned (so that its
success or failure callback runs registered). Under load these were 6 of the 14 round
trips RQ spends on a job, for keys that live a minute or more (``bench/e2e.py``, worker CPU
per alerting call). Here:

* the registration is renewed in one pipeline, and the plain renewal (RQ's loop, before
  and after every job) at most every ``BEAT_EVERY_S``; a renewal with a timeout or into a
  pipeline is RQ's own bookkeeping and always goes through. The liveness beat
  (``workers.rq_adaptations.liveness``, every 3 s) carries the plain renewal in its own
  round trip (``renew_registration``), so the loop's is left with nothing to do while the
  beat runs;
* ``rq suspend`` is looked at most every ``SUSPENSION_CHECK_S`` (a round trip before every
  job before; a suspended worker still finishes the job in hand, as in RQ);
* a state is written only when it changes, and ``idle`` only once the worker has waited a
  whole pop (``POP_WAIT_S``) for its next job (a worker going from job to job stays ``busy``);
* the job is beaten at its end only if it has a callback to run (callwatch's have none);
* a job that succeeded is finished in one transaction when it keeps no result, repeats
  not, has no rate limit and no group (every callwatch job but the incident checks): RQ
  first WATCHes the job's dependents and reads them (two round trips) so as to enqueue
  them, and callwatch enqueues no job with ``depends_on``; and to delete the job it reads
  its status and, twice, its executions (some eight round trips), where the execution
  that ran is known and deleted as RQ's own ``cleanup_execution`` does.

Pins (``tests/integration/test_worker_rq_pins.py``):
``test_rq_beats_and_writes_idle_around_every_job``,
``test_rq_reads_a_finished_jobs_dependents_before_its_transaction``.
"""

from __future__ import annotations

import time
from typing import Any

from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.results import Result
from rq.utils import now
from rq.worker import BaseWorker, WorkerStatus

#: How often the plain renewal of RQ's worker registration goes through (its TTL is 35 s).
BEAT_EVERY_S = 5.0
#: How often a worker looks whether ``rq suspend`` paused the deployment.
SUSPENSION_CHECK_S = 5.0


class FewerRoundTrips(BaseWorker):
    """RQ's registration, suspension check, state and end-of-job beat, written when needed."""

    _last_beat = float("-inf")
    _suspension_checked = float("-inf")
    #: ``idle`` recorded but not yet written (written once the worker has waited).
    _idle_unwritten = False

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        moment = time.monotonic()
        if timeout is None:
            if moment - self._last_beat < BEAT_EVERY_S:
                return
            self._last_beat = moment
        with self.connection.pipeline() as pipe:
            super().heartbeat(timeout, pipe)
            pipe.execute()

    def renew_registration(self, pipeline: Any) -> None:
        """The plain renewal, queued on another round trip's ``pipeline`` (the beat's, from its
        thread): the loop's own waits ``BEAT_EVERY_S`` from now."""
        super().heartbeat(None, pipeline)
        self._last_beat = time.monotonic()

    def check_for_suspension(self, burst: bool) -> None:
        moment = time.monotonic()
        if moment - self._suspension_checked < SUSPENSION_CHECK_S:
            return
        self._suspension_checked = moment
        super().check_for_suspension(burst)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        if pipeline is not None:  # RQ's own transaction (``busy`` as a job starts)
            self._idle_unwritten = False
            super().set_state(state, pipeline)
            return
        if state == self.get_state() and not self._idle_unwritten:
            return
        if state == WorkerStatus.IDLE:
            self._state = state
            self._idle_unwritten = True
            return
        self._idle_unwritten = False
        super().set_state(state)

    def waited_for_jobs(self) -> None:
        """The worker waited a whole pop without a job: it is idle, say so."""
        if self._idle_unwritten:
            self._idle_unwritten = False
            super().set_state(WorkerStatus.IDLE)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        if job._success_callback_name or job._failure_callback_name or job._stopped_callback_name:
            super().handle_execution_ended(job, queue, heartbeat_ttl)
        else:
            job.ended_at = now()

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry,
                           execution: Execution) -> None:
        if (job.get_result_ttl(self.default_result_ttl) != 0 or job.repeats_left
                or job.has_rate_limit or job.group_id):
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        with self.connection.pipeline() as pipeline:  # RQ's transaction, minus the dependents
            self.increment_successful_job_count(pipeline=pipeline)
            if job.started_at and job.ended_at:
                self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
            # Instead of RQ's ``job.cleanup(0)``, which reads the job's status and, twice,
            # its executions (some eight round trips) to delete them all: the execution that
            # ran, the job's keys and its executions' index. What an earlier, crashed run
            # left (its execution's hash and started entry) expires by its TTL and RQ's
            # registry clean-up, which drops entries whose job is gone.
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            pipeline.delete(job.key, job.dependents_key, job.dependencies_key,
                            Result.get_key(job.id), job.execution_registry.key)
            job._status = JobStatus.FINISHED
            pipeline.execute()
