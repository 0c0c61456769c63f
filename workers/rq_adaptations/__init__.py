"""Every adaptation of RQ, one module each, and the index of the RQ behaviour each pins.

Each module opens with "What this changes in RQ, and why"; the RQ behaviour it relies on
is pinned by a test, in ``tests/integration/test_worker_rq_pins.py`` unless another file
is named, so an RQ upgrade shows what broke. ``workers.worker`` puts them together.

Index: module, the RQ behaviour it changes or relies on, its pin.

- ``shutdown``: RQ's SIGTERM handler (``request_stop``) and its warm stop, which waits
  for the job however long; RQ arms ``SIGALRM`` only while a job's code runs, and a stop
  shortens it. Pins: ``test_rq_installs_request_stop_as_its_sigterm_handler``,
  ``test_rq_arms_its_job_alarm_only_while_the_job_runs``; ``test_worker_stop.py``.
- ``dequeue``: RQ's ``dequeue_job_and_maintain_ttl`` (a long ``BLPOP``, Redis errors
  retried forever, a heartbeat before every job).
  Pin: ``test_rq_ends_its_loop_when_the_dequeue_returns_nothing``.
- ``pop_wake`` (for ``dequeue``): RQ's pop raises ``DequeueTimeout`` when ``BLPOP`` answers
  nil, which is what ``CLIENT UNBLOCK ... TIMEOUT`` makes it answer.
  Pins: ``test_rq_reports_an_unblocked_pop_as_a_timeout``; ``test_worker.py``.
- ``round_trips``: RQ's loop beats the worker (three round trips) after every job, looks for
  a suspension before each, writes ``idle`` after each, and beats the job as its code
  returns; a finished job's transaction WATCHes and reads its dependents first.
  Pins: ``test_rq_beats_and_writes_idle_around_every_job``,
  ``test_rq_reads_a_finished_jobs_dependents_before_its_transaction``.
- ``one_start``: RQ starts a job in two transactions (``prepare_execution``, then
  ``prepare_job_execution``), the job ``queued`` with no worker name in between; an
  in-process job is started in one. Pins:
  ``test_rq_starts_an_in_process_job_in_two_transactions``,
  ``test_one_start_transaction_leaves_what_rqs_two_leave``.
- ``redis_loss``: a Redis error inside RQ's loop.
  Pin: ``test_rq_reraises_system_exit_from_its_loop``.
- ``restart``: RQ's worker ends when Redis fails it. Pin: ``test_worker_edge.py``.
- ``job_in_hand``: a job popped and not yet registered is in no queue and no registry;
  one registered (``prepare_execution``) but not yet marked started (RQ's forking worker;
  ``one_start`` closes that window for an in-process one) is ``queued`` in the started
  registry, with no worker name. Pins: ``test_worker.py``, ``test_worker_redis_loss.py``.
- ``put_back`` (for ``job_in_hand`` and ``liveness``): RQ's clean-up retries only
  ``started`` jobs and drops the expired entries of the others.
  Pin: ``test_worker_redis_loss.py::test_rq_drops_the_expired_entry_of_a_job_it_never_marked_started``.
- ``liveness``: an in-process job stays registered for its whole timeout plus 60 s.
  Pins: ``test_rq_retries_a_started_job_whose_execution_score_expired``,
  ``test_rq_gives_an_in_process_job_its_whole_timeout_before_it_is_abandoned``.
- ``scheduler_locks``: a dead scheduler's lock lives 61 s.
  Pin: ``test_rq_scheduler_lock_ttl_is_what_scheduler_locks_assumes``.
- ``sink_lines``: RQ runs whatever is first in the queue; a queue is the list
  ``Queue.key`` of job ids. Pins:
  ``test_rq_runs_a_job_id_pushed_back_to_the_front_of_its_queue_list``;
  ``test_sink_lines.py``.
- ``job_logs``: RQ logs every job exception with its traceback, and three INFO lines a
  job. Pin: ``test_worker_edge.py``.
- ``pubsub_reads``: RQ reads its command channel in 60 s slices.
  Pin: ``test_rq_reads_its_command_channel_for_60_s_at_a_time``.
- ``scheduler_process``: RQ's forked scheduler process re-raises what it logged, every
  worker's ``RQScheduler`` opens a Redis connection of its own, and RQ's teardown joins
  the scheduler process with no deadline. Pins: ``test_json_logs.py``,
  ``test_redis_budget.py``, ``test_scheduler_locks.py``.
- ``unique_enqueue`` (the queue class ``workers.queues`` builds): RQ's unique enqueue
  registers the queue in ``rq:queues`` in a transaction of its own before its script; here
  one script does both. Pins:
  ``test_rq_registers_the_queue_apart_from_its_unique_enqueue_script``,
  ``test_a_one_trip_unique_enqueue_leaves_what_rqs_leaves``.
- ``workers.queues`` (outside this package, beside the queues it defines): ``result_ttl=0``
  keeps nothing of a finished job; ``unique`` enqueues.
  Pin: ``test_rq_keeps_nothing_of_a_job_finished_with_result_ttl_zero``.
"""
