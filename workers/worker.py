"""``python -m workers.worker``: RQ workers that also run RQ's scheduler.

Each worker listens on the delivery and analysis queues (deliveries first, so that
under overload finished alerts still go out) with the JSON serializer, and runs jobs
in its own process (RQ's ``SimpleWorker``): forking a work horse per job cost three
times the job itself. ``--fork`` restores RQ's forking worker (``HerokuWorker`` when
``DYNO`` is set) for isolation. ``--concurrency N`` (default 4) runs N such worker
processes (``workers.pool``), so a job that waits on a slow peer holds one of them,
not the container.

The adaptations of RQ live one per module in ``workers.rq_adaptations`` (its docstring
indexes the RQ behaviour each pins), each saying what it changes and why:
``shutdown`` (stop on a signal at any moment), ``dequeue`` (wait for jobs in pops a stop
ends, hold the popped job), ``pop_wake`` (end a pop early), ``round_trips`` (RQ's per-job
bookkeeping writes, thinned), ``one_start`` (an in-process job started in one transaction,
not two), ``redis_loss`` (leave RQ's loop on a Redis error), ``restart`` (wait for Redis,
backed off, and start again), ``job_in_hand`` and ``put_back`` (put back the job Redis
lost), ``liveness`` (recover jobs of dead workers in seconds),
``scheduler_locks`` (free a dead scheduler's lock), ``sink_lines`` (a slow sink holds
at most its share of the workers, its other deliveries parked in a line of their own),
``job_logs`` (one line for an expected failure),
``pubsub_reads`` (read RQ's command channel in short slices, so teardown is prompt),
``scheduler_process`` (a scheduler crash is one JSON line; no idle scheduler connection),
``unique_enqueue`` (a unique enqueue in one round trip, for every process's queues).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Collection
from typing import Any

import redis as redis_lib
import structlog
from rq import Queue
from rq.registry import clean_registries as clean_rq_registries
from rq.serializers import JSONSerializer
from rq.utils import now as rq_now
from rq.worker import HerokuWorker, SimpleWorker, Worker

# Imported here, once, so every worker process (and forked work horse) inherits the
# job code and its dependencies instead of importing them per job.
import workers.jobs  # noqa: F401
from service import keys
from service.delivery.step import UNKNOWN_SINK_WAIT_S
from service.errors import ConfigError
from service.logs import configure_logging
from service.roster import config_fingerprint
from service.routing_file.load import Configuration, configuration_or_exit
from service.routing_file.parse import RoutingConfig
from service.settings import Settings
from workers import context
from workers.digest_clock import DigestClock, start_digest_clock
from workers.heartbeat_pinger import HeartbeatPinger
from workers.intake_mover import ALONE, IntakeMover, Turn, container_phase
from workers.pool import DEFAULT_CONCURRENCY, run_pool
from workers.queues import (
    ANALYSIS_QUEUE,
    DELIVERY_QUEUE,
    queue,
    release_unknown_sink_waits,
    sink_queue_name,
    waiting_sinks,
)
from workers.rq_adaptations import pop_wake, scheduler_process
from workers.rq_adaptations.death_watch import DeathWatch
from workers.rq_adaptations.job_in_hand import ReleasesJobInHand
from workers.rq_adaptations.job_logs import QuietExpectedFailures, rq_logging_level
from workers.rq_adaptations.liveness import Heartbeat, recover_orphaned_jobs, recovery_turn
from workers.rq_adaptations.one_start import StartsInOneTransaction
from workers.rq_adaptations.pubsub_reads import ShortPubSubReads
from workers.rq_adaptations.redis_loss import LeavesOnRedisError
from workers.rq_adaptations.restart import run
from workers.rq_adaptations.scheduler_locks import WatchesSchedulerLocks, release_stale_scheduler_locks
from workers.rq_adaptations.shutdown import StopSignal
from workers.rq_adaptations.sink_lines import SinkLines

#: How often the deployment runs RQ's maintenance (RQ's default is 10 minutes), in one
#: worker process a pass (``keys.MAINTENANCE_TURN``): the liveness recovery, the sinks'
#: lines and the scheduler lock take-over run with it.
MAINTENANCE_INTERVAL_S = 5
#: How often, within those passes, RQ's own registry clean-up runs (expired entries of the
#: finished, failed and started registries, dead workers' registrations): some 30 round
#: trips a pass, for entries that expire in minutes. A job of a dead worker does not wait
#: for it: the liveness recovery cleans the registry it marked at once.
REGISTRY_CLEANING_S = 60
#: RQ's registration TTL for a worker; RQ's BLPOP would wait this less 15 s (ours waits
#: ``POP_WAIT_S``).
WORKER_TTL_S = 35
#: Redis connections one worker process may hold: jobs and dequeueing, RQ's command
#: channel, and the beat and intake threads sharing one (the README's Heroku budget).
WORKER_REDIS_CONNECTIONS = 3
#: Worker processes per dyno on Heroku unless --concurrency says otherwise: with 2, the
#: default formation and a second worker dyno fit Heroku Key-Value Store mini's 20 connections.
HEROKU_CONCURRENCY = 2
#: How long an abandoned worker waits for its pub/sub thread to end.
PUBSUB_JOIN_S = 2.0

log = structlog.get_logger(__name__)


class _RecoversFromDeadWorkers(WatchesSchedulerLocks):
    """Beats a liveness key (and looks at RQ's scheduler locks with it) and moves due calls
    from the intake; in maintenance, frees what dead workers and schedulers held."""

    _heartbeat: Heartbeat | None = None
    _intake: IntakeMover | None = None
    _pinger: HeartbeatPinger | None = None
    _digests: DigestClock | None = None
    _abandoned = False
    #: Which seconds this process moves due calls in (``workers.intake_mover.Turn``).
    intake_turn = ALONE

    def register_birth(self) -> None:
        super().register_birth()
        self._heartbeat = Heartbeat(self.connection, self.name, _fingerprint(), locks=self,
                                    renew=self.renew_registration,
                                    connection_name=lambda: pop_wake.name_in_use(self.connection)
                                    ).start()
        watch = DeathWatch(self.connection, on_dead=self._recover_jobs_of)
        self._intake = IntakeMover(self.connection, turn=self.intake_turn,
                                   also=[watch.look]).start()
        self._digests = start_digest_clock(self.connection)
        settings = _settings()
        if settings is not None and settings.heartbeat_url:
            self._pinger = HeartbeatPinger(self.connection, settings.heartbeat_url,
                                           context.current().session).start()

    def register_death(self) -> None:
        self._stop_helpers()
        super().register_death()

    def run_maintenance_tasks(self) -> None:
        """The deployment's maintenance (RQ's registry clean-up and scheduler lock, the
        recovery of dead workers' jobs, the sinks' lines) in one worker process per
        ``MAINTENANCE_INTERVAL_S``, whichever asks first: run in every process it cost
        each a reconnection and some 50 commands every 5 s for work one pass does."""
        if not self.connection.set(keys.MAINTENANCE_TURN, self.name, nx=True,
                                   px=int(MAINTENANCE_INTERVAL_S * 1000) - 100):
            self.last_cleaned_at = rq_now()  # type: ignore[assignment]  # RQ: ask again in an interval
            scheduler_process.close_idle_scheduler_connection(self)
            return
        release_unknown_sink_waits(self.connection, set(_known_sinks()), now=time.time(),
                                   longest_s=UNKNOWN_SINK_WAIT_S)
        release_stale_scheduler_locks(self.connection, self.queue_names())
        self._recover_jobs_of(())
        super().run_maintenance_tasks()

    def _recover_jobs_of(self, dead: Collection[str]) -> bool:
        """Recover the jobs of workers that stopped beating, and of ``dead`` ones at once
        (``death_watch``, from the intake's thread); False when another process's
        recovery was running (it may have read the dead workers' keys before they went)."""
        with recovery_turn(self.connection) as ours:
            if ours:
                # Every sink's queue, not only this process's: the turn may fall to a process
                # that does not know a sink whose delivery a dead worker held.
                recover_orphaned_jobs(self.connection, [*self.queues, *_other_sink_queues(
                    self.connection, set(self.queue_names()))], dead=dead)
            return ours

    def clean_registries(self) -> None:
        """RQ's registry clean-up, in one process of the deployment per ``REGISTRY_CLEANING_S``."""
        if self.connection.set(keys.REGISTRY_CLEANING_TURN, self.name, nx=True,
                               ex=REGISTRY_CLEANING_S):
            super().clean_registries()
            super().clean_group_registries()
            # The sinks' queues this process does not listen on: nobody else's turn cleans them.
            for other in _other_sink_queues(self.connection, set(self.queue_names())):
                clean_rq_registries(other, self._exc_handlers)
        self.last_cleaned_at = rq_now()  # type: ignore[assignment]  # RQ: maintenance ran

    def clean_group_registries(self) -> None:
        """Run with ``clean_registries``, on its turn."""

    def abandon(self) -> None:
        """Let go of everything this worker started, after Redis failed it: RQ's teardown
        stops at the first Redis error, so its beat (which would keep its jobs from being
        recovered), its intake mover and its pub/sub thread (which retries forever) would
        otherwise outlive it, one set per outage."""
        self._abandoned = True
        self._stop_helpers()
        thread = self.pubsub_thread
        if thread is not None:
            thread.stop(timeout=0)  # its flag cleared; redis-py's stop() would wait for it
            # Wake it from its read by cutting its socket; the thread closes the pub/sub
            # itself as it ends (closing it from here raced with that close).
            connection = self.pubsub.connection
            if connection is not None:
                with contextlib.suppress(redis_lib.RedisError, OSError):
                    connection.disconnect()
            thread.join(timeout=PUBSUB_JOIN_S)

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any,
                                  pubsub_thread: Any) -> None:
        if self._abandoned:  # abandon() closed the connection under the thread: it ends here,
            return  # not with RQ's re-raise (a traceback that tore through a log line)
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def _stop_helpers(self) -> None:
        self.stop_waking()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self._intake is not None:
            self._intake.stop()
        if self._pinger is not None:
            self._pinger.stop()
        if self._digests is not None:
            self._digests.stop()


class _CallwatchWorker(QuietExpectedFailures, LeavesOnRedisError, _RecoversFromDeadWorkers,
                       SinkLines, ReleasesJobInHand, ShortPubSubReads,
                       scheduler_process.ClosesIdleSchedulerConnection):
    """Every adaptation of RQ, in the order they wrap RQ's methods."""


class CallwatchWorker(_CallwatchWorker, Worker):
    """RQ's forking worker (a work horse per job)."""


class CallwatchHerokuWorker(_CallwatchWorker, HerokuWorker):
    """RQ's Heroku worker: a dyno's SIGTERM stops the running job cleanly for a retry."""


class CallwatchSimpleWorker(_CallwatchWorker, StartsInOneTransaction, SimpleWorker):
    """Jobs in the worker's own process: the default (``--fork`` for the others); each
    started in one transaction (``one_start``)."""


def _settings() -> Settings | None:
    """This process's settings (None when it has no configuration, as in some tests)."""
    try:
        return context.current().settings
    except ConfigError:
        return None


def _other_sink_queues(redis: redis_lib.Redis, listened: set[str]) -> list[Queue]:
    """The ``delivery-for-<sink>`` queues in use that this process does not listen on."""
    names = (sink_queue_name(sink) for sink in waiting_sinks(redis))
    return [queue(name, redis) for name in names if name not in listened]


def _known_sinks() -> list[str]:
    """The sinks this process's configuration names (none without a configuration)."""
    try:
        return list(context.current().sinks.names)
    except ConfigError:
        return []


def _fingerprint() -> str:
    """This process's configuration fingerprint ("" when it has no configuration yet)."""
    try:
        current = context.current()
    except ConfigError:
        return ""
    return config_fingerprint(Configuration(current.settings, current.routing))


def build_worker(redis: redis_lib.Redis, *, simple: bool = True, name: str | None = None,
                 stop: StopSignal | None = None, turn: Turn = ALONE) -> _CallwatchWorker:
    """In-process (``simple``, the default), else forking: Heroku's or RQ's."""
    cls: type[_CallwatchWorker]
    if simple:
        cls = CallwatchSimpleWorker
    elif os.environ.get("DYNO"):
        cls = CallwatchHerokuWorker
    else:
        cls = CallwatchWorker
    # Deliveries first; then those other workers left for one that knows their sink; then
    # analyses.
    names = (DELIVERY_QUEUE, *(sink_queue_name(sink) for sink in _known_sinks()), ANALYSIS_QUEUE)
    worker = cls(
        [queue(name_, redis) for name_ in names],
        connection=redis,
        serializer=JSONSerializer,
        name=name,
        worker_ttl=WORKER_TTL_S,
        maintenance_interval=MAINTENANCE_INTERVAL_S,
    )
    worker.stop_signal = stop or StopSignal()
    worker.intake_turn = turn
    return worker


def work(settings: Settings, *, routing: RoutingConfig | None = None, burst: bool = False,
         simple: bool = True, name: str | None = None, stop: StopSignal | None = None,
         turn: Turn = ALONE) -> int:
    """One worker process: its own Redis client and job context, then the restart loop."""
    redis = settings.redis(bounded=WORKER_REDIS_CONNECTIONS, **pop_wake.named_connections())
    context.configure(settings, redis, routing=routing)
    return run(redis, lambda worker_name, stop_: build_worker(redis, simple=simple,
                                                              name=worker_name, stop=stop_,
                                                              turn=turn),
               burst=burst, name=name, rq_logging_level=rq_logging_level(settings.log_level),
               stop=stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--simple", action="store_true",
                      help="run each job in this process (the default)")
    mode.add_argument("--fork", action="store_true",
                      help="fork a work horse per job (RQ's Worker; HerokuWorker on Heroku)")
    parser.add_argument("--concurrency", type=_positive, default=None,
                        metavar="N", help="worker processes, each running one job at a time "
                        f"(default {DEFAULT_CONCURRENCY}, {HEROKU_CONCURRENCY} on Heroku; "
                        "1 runs in this process)")
    parser.add_argument("--name", help="worker name (default: RQ's); N > 1 adds -1, -2 ...")
    args = parser.parse_args(argv)
    configuration = configuration_or_exit(os.environ)
    settings = configuration.settings
    configure_logging(settings.log_level, settings.log_format)
    scheduler_process.install()
    options = {"burst": args.burst, "simple": not args.fork, "routing": configuration.routing}
    concurrency = args.concurrency or (HEROKU_CONCURRENCY if os.environ.get("DYNO")
                                       else DEFAULT_CONCURRENCY)
    phase = container_phase()
    if concurrency == 1 or args.burst:
        return work(settings, name=args.name, turn=Turn(phase=phase), **options)
    return run_pool(concurrency,
                    lambda name, stop, index: work(settings, name=name, stop=stop,
                                                   turn=Turn(index, concurrency, phase),
                                                   **options),
                    name=args.name)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


if __name__ == "__main__":
    raise SystemExit(main())
