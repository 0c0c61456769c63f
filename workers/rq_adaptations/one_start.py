"""Starting an in-process job in one transaction instead of RQ's two.

What this changes in RQ, and why: RQ starts a job in two transactions, written for its
forking worker, where they run in two processes: the worker's ``prepare_execution``
registers the execution (its hash, the job's executions index, the queue's started
registry, the worker's executions index) and writes the worker ``busy``; then the work
horse's ``prepare_job_execution`` beats the worker and marks the job ``started`` with its
worker's name (and ``PERSIST``\\s it). RQ's in-process ``SimpleWorker`` (callwatch's
default) runs both, one after the other, in the same process: two round trips where one
does (``bench/e2e.py``, worker CPU per alerting call). Here ``prepare_execution`` writes
both in one ``MULTI``/``EXEC``, in RQ's order, and ``prepare_job_execution`` then writes
nothing for that job; the job's own ``last_heartbeat`` is written once (RQ wrote it twice
in its second transaction, the second write over the first).

It also closes a window: between RQ's two transactions a job is in the started registry
but still ``queued``, with no worker name, a state a Redis failure or a killed worker
could leave behind (``workers.rq_adaptations.put_back`` and ``liveness`` recover it).
Started in one transaction, an in-process job is either in no registry (in hand:
``workers.rq_adaptations.job_in_hand`` puts it back) or ``started`` with its worker's name
(``workers.rq_adaptations.liveness``). RQ's forking workers (``--fork``) keep RQ's two
transactions, and those recoveries stay for them and for jobs an older release started.

Only for in-process workers (``workers.worker.CallwatchSimpleWorker``): in a forking
worker the second transaction is the work horse's.

Pins (``tests/integration/test_worker_rq_pins.py``):
``test_rq_starts_an_in_process_job_in_two_transactions``,
``test_one_start_transaction_leaves_what_rqs_two_leave``.
"""

from __future__ import annotations

import time

from rq.executions import Execution
from rq.job import Job
from rq.worker import BaseWorker, WorkerStatus


class StartsInOneTransaction(BaseWorker):
    """RQ's ``prepare_execution`` and ``prepare_job_execution``, in one transaction."""

    #: The job whose start ``prepare_execution`` wrote in full, until ``perform_job`` asks.
    _started_whole: Job | None = None

    def prepare_execution(self, job: Job) -> Execution:
        heartbeat_ttl = self.get_heartbeat_ttl(job)
        with self.connection.pipeline() as pipeline:
            # RQ's prepare_execution (rq/executions.py) ...
            execution = Execution.create(job, heartbeat_ttl, pipeline=pipeline,
                                         worker_name=self.name)
            self.executions[execution.id] = execution
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            # ... and RQ's prepare_job_execution, minus the job's heartbeat, whose
            # ``last_heartbeat`` prepare_for_execution writes again in the same transaction.
            self.heartbeat(heartbeat_ttl, pipeline=pipeline)
            job.prepare_for_execution(self.name, pipeline=pipeline)
            pipeline.persist(job.key)
            if len(self.queues) == 1:  # perform_job's remove_from_intermediate_queue
                pipeline.lrem(self.queues[0].intermediate_queue_key, 1, job.id)
            pipeline.execute()
        self._started_whole = job
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        if self._started_whole is job:
            self._started_whole = None
            self.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")
            return
        super().prepare_job_execution(job, remove_from_intermediate_queue)
