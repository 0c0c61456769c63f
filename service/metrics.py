"""Deployment-wide metrics, kept in Redis so one scrape of any web process sees them all.

prometheus_client's own counters live in one process; callwatch runs many web and
worker processes on many hosts, and the work an operator cares about happens in the
workers, which serve no HTTP. So every process adds to counters and histograms in
Redis hashes (one script of ``HINCRBYFLOAT`` per observation, or per job's worth), and ``/metrics``
renders them, plus the queues' depths (from a ``QueueDepths`` the worker edge
provides: the domain knows nothing of the job queue), through a custom collector.
Recording never raises: a metric lost while Redis is down is better than
a callback refused because of it.

Every counter is shown at 0 for its known label sets (``known_label_sets``) before
its first increment: Prometheus's ``increase(...[15m]) > 0`` needs a sample before
the first failure to see it, so a series born at 1 would never fire such a rule.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import redis as redis_lib
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from service import keys
from service.decisions import AnalysisOutcome, DeliveryOutcome
from service.redis_scripts import script

PREFIX = keys.METRICS_PREFIX
#: The route of an alert no route took (``service.delivery.routing.DEFAULT_ROUTE``).
DEFAULT_ROUTE = "default"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Call end -> delivered includes ANALYSIS_DELAY_SECONDS (90 s by default) and any re-check.
ALERT_LATENCY_BUCKETS = (30.0, 60.0, 90.0, 100.0, 120.0, 150.0, 180.0, 240.0, 300.0, 600.0,
                         1200.0, 3600.0)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    help: str
    labels: tuple[str, ...]
    kind: str = "counter"  # or "histogram"
    buckets: tuple[float, ...] = LATENCY_BUCKETS


SPECS = {spec.name: spec for spec in (
    MetricSpec("callwatch_callbacks", "Status callbacks received, by outcome and refusal reason.",
               ("outcome", "reason")),
    MetricSpec("callwatch_analyses", "Analysis jobs finished, by outcome.", ("outcome",)),
    MetricSpec("callwatch_insights_events_fetched", "Events read from the Insights Events API.", ()),
    MetricSpec("callwatch_insights_requests", "Requests to the Insights API, by HTTP status.",
               ("status",)),
    MetricSpec("callwatch_insights_request_duration_seconds",
               "Latency of Insights API requests.", (), "histogram"),
    MetricSpec("callwatch_alerts", "Alerts produced, by severity, first issue's category and "
               "first route that took it.", ("severity", "category", "route")),
    MetricSpec("callwatch_alerts_unrouted", "Alerts that no route and no default took.", ()),
    MetricSpec("callwatch_alerts_silenced", "Alerts not sent because a silence matched them.", ()),
    MetricSpec("callwatch_deliveries", "Delivery attempts, by sink and outcome.",
               ("sink", "outcome")),
    MetricSpec("callwatch_delivery_duration_seconds",
               "Latency of delivery attempts, by sink.", ("sink",), "histogram"),
    MetricSpec("callwatch_incidents", "Incident events emitted, by route, trigger and event.",
               ("route", "trigger", "event")),
    MetricSpec("callwatch_alerts_folded", "Alerts folded into an open incident, by route.",
               ("route",)),
    MetricSpec("callwatch_calls_analysed", "Calls analysed (with an alert or not).", ()),
    MetricSpec("callwatch_calls_api_requests",
               "Requests to Twilio's Calls API (child legs of phone legs), by HTTP status.",
               ("status",)),
    MetricSpec("callwatch_alerts_dropped",
               "Alerts taken only by routes with no sinks (dropped on purpose).", ()),
    MetricSpec("callwatch_alert_latency_seconds",
               "From the call's end (its terminal callback) to an alert's delivery, by sink type.",
               ("sink_type",), "histogram", ALERT_LATENCY_BUCKETS),
)}


#: Callback outcomes and refusal reasons (the web edge's ``RequestRefused`` errors).
CALLBACK_LABELS = (("accepted", ""), ("duplicate", ""), ("ignored", ""),
                   ("refused", "invalid_signature"), ("refused", "invalid_request"),
                   ("refused", "unsupported_media_type"), ("refused", "payload_too_large"),
                   ("refused", "unavailable"))
SEVERITIES = ("error", "warning")


def known_label_sets(sinks: Iterable[str], routes: Iterable[str] = (DEFAULT_ROUTE,),
                     categories: Iterable[str] = ("other",),
                     ) -> dict[str, list[tuple[str, ...]]]:
    """The label sets each counter shows at 0 until its first increment, for the
    configured ``sinks`` and ``routes`` and the catalogue's issue ``categories``.
    (Insights' HTTP statuses are open-ended and not listed.)"""
    routes, categories = list(routes), list(categories)
    unlabelled: dict[str, list[tuple[str, ...]]] = {spec.name: [()] for spec in SPECS.values()
                                                   if spec.kind == "counter" and not spec.labels}
    return {
        **unlabelled,
        "callwatch_callbacks": list(CALLBACK_LABELS),
        "callwatch_analyses": [(outcome.value,) for outcome in AnalysisOutcome],
        "callwatch_alerts": [(severity, category, route) for severity in SEVERITIES
                             for category in categories for route in routes],
        "callwatch_deliveries": [(sink, outcome.value)
                                 for sink in sinks for outcome in DeliveryOutcome],
    }


# KEYS: metric hashes; ARGV: per increment, its hash's index in KEYS, the field, the amount.
# One EVALSHA for a job's dozen or so increments: a pipeline of one HINCRBYFLOAT each cost
# redis-py a command's packing and a reply's parsing apiece (``bench/e2e.py``: about 5 %
# of a worker's CPU).
_ADD = """
for i = 1, #ARGV, 3 do
  redis.pcall('HINCRBYFLOAT', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
return #ARGV / 3
"""


class Metrics:
    """Adds to the deployment's counters and histograms in Redis."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self._redis = redis

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._write(name, [(_label_key(name, labels), amount)])

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """One histogram observation: its bucket, the count and the sum."""
        key = _label_key(name, labels)
        bucket = next((str(b) for b in SPECS[name].buckets if seconds <= b), "+Inf")
        self._write(name, [(f"{key}|b|{bucket}", 1), (f"{key}|count", 1), (f"{key}|sum", seconds)])

    def _write(self, name: str, fields: list[tuple[str, float]]) -> None:
        with contextlib.suppress(redis_lib.RedisError):  # a metric lost, never a callback or job
            self._add((name, field, amount) for field, amount in fields)

    def _add(self, increments: Iterable[tuple[str, str, float]]) -> None:
        """Each ``(metric, field, amount)`` added, the same field's amounts summed first,
        in one script; raises ``redis.RedisError``."""
        totals: dict[tuple[str, str], float] = {}
        for name, field, amount in increments:
            totals[(name, field)] = totals.get((name, field), 0.0) + amount
        names = list(dict.fromkeys(name for name, _ in totals))
        index = {name: str(i) for i, name in enumerate(names, 1)}
        args: list[str] = []
        for (name, field), amount in totals.items():
            args += (index[name], field, repr(amount))
        script(self._redis, _ADD)(keys=[PREFIX + name for name in names], args=args)


class JobMetrics(Metrics):
    """Metrics that add up over one job and reach Redis in one script at ``flush()``.

    Used by worker jobs: an analysis counts five or six things, a delivery two or three;
    one round trip instead of one each (``bench/e2e.py``: worker CPU per alerting call).
    """

    def __init__(self, redis: redis_lib.Redis) -> None:
        super().__init__(redis)
        self._pending: list[tuple[str, str, float]] = []

    def _write(self, name: str, fields: list[tuple[str, float]]) -> None:
        self._pending.extend((name, field, amount) for field, amount in fields)

    def flush(self) -> None:
        """Write what was counted; a Redis error loses it (a metric, never a job)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        with contextlib.suppress(redis_lib.RedisError):
            self._add(pending)


class BufferedMetrics(Metrics):
    """Metrics that add up in memory and reach Redis every ``flush_s`` seconds.

    Used by web processes: a callback, even a refused one, then costs no Redis
    write of its own, and thousands of callbacks a second cost one write every few
    seconds. The flushing thread starts on first use, so it lives in each
    gunicorn worker after the fork, and whatever is left is flushed at exit.
    """

    def __init__(self, redis: redis_lib.Redis, *, flush_s: float = 5.0) -> None:
        super().__init__(redis)
        self._flush_s = flush_s
        self._pending: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _write(self, name: str, fields: list[tuple[str, float]]) -> None:
        with self._lock:
            for field, amount in fields:
                self._pending[(name, field)] += amount
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="metrics-flush",
                                                daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            threading.Event().wait(self._flush_s)
            self.flush()

    def flush(self) -> None:
        """Write what has added up; on a Redis error keep it for the next flush."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(float)
        if not pending:
            return
        try:
            self._add((name, field, amount) for (name, field), amount in pending.items())
        except redis_lib.RedisError:
            with self._lock:
                for key, amount in pending.items():
                    self._pending[key] += amount


def _label_key(name: str, labels: Mapping[str, str]) -> str:
    """The field for one label set; the one check of a metric's name and labels."""
    return _field(name, tuple(labels.items()))


@lru_cache(maxsize=4096)
def _field(name: str, items: tuple[tuple[str, str], ...]) -> str:
    """Cached: a process counts the same few label sets over and over."""
    labels = dict(items)
    spec = SPECS.get(name)
    if spec is None:
        raise KeyError(f"unknown metric {name}")
    if set(labels) != set(spec.labels):
        raise ValueError(f"{name} takes labels {spec.labels}, got {sorted(labels)}")
    return json.dumps([str(labels[label]) for label in spec.labels])


class QueueDepths(Protocol):
    """Jobs waiting, scheduled, running and failed, per queue (``workers.queue_depths``)."""

    def read(self, redis: redis_lib.Redis) -> Mapping[tuple[str, str], int]:
        """``{(queue, state): jobs}``; raises ``redis.RedisError`` when Redis fails."""
        ...


class RedisCollector(Collector):
    """Renders the Redis-held metrics and, given a ``QueueDepths``, the queues' depths.

    Counters show every known label set (``known_label_sets(sinks)``), at 0 until
    first counted. While Redis does not answer, only ``callwatch_metrics_redis_up 0``:
    a counter shown at 0 then would read as a reset to Prometheus.
    """

    def __init__(self, redis: redis_lib.Redis, queue_depths: QueueDepths | None = None,
                 sinks: Iterable[str] = (), routes: Iterable[str] = (DEFAULT_ROUTE,),
                 categories: Iterable[str] = ("other",), *, fingerprint: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._queue_depths = queue_depths
        self._clock = clock
        self._sinks = tuple(sinks)
        self._fingerprint = fingerprint
        self._zeros = {name: [json.dumps(list(labels)) for labels in label_sets]
                       for name, label_sets in known_label_sets(self._sinks, routes, categories).items()}

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("callwatch_metrics_redis_up",
                               "1 when the metrics store (Redis) answered this scrape.")
        try:
            now = self._clock()
            pipe = self._redis.pipeline(transaction=False)
            for name in SPECS:
                pipe.hgetall(PREFIX + name)
            read_state_gauges(pipe, now, self._sinks)
            replies = pipe.execute()
            depths = self._queue_depths.read(self._redis) if self._queue_depths else {}
        except redis_lib.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for spec, raw in zip(SPECS.values(), replies[:len(SPECS)], strict=True):
            fields = dict.fromkeys(self._zeros.get(spec.name, ()), 0.0)
            fields.update((k.decode(), float(v)) for k, v in raw.items())
            yield _family(spec, fields)
        yield from state_gauges(replies[len(SPECS):], self._sinks)
        with contextlib.suppress(redis_lib.RedisError):
            yield from deployment_gauges(self._redis, self._fingerprint, self._queue_depths,
                                         now=now)
        if self._queue_depths is None:
            return
        gauge = GaugeMetricFamily("callwatch_queue_jobs",
                                  "Jobs in the queues by state (whole deployment).",
                                  labels=["queue", "state"])
        for (queue, state), value in sorted(depths.items()):
            gauge.add_metric([queue, state], value)
        yield gauge


def _family(spec: MetricSpec, fields: dict[str, float]) -> Metric:
    if spec.kind == "counter":
        counter = CounterMetricFamily(spec.name, spec.help, labels=list(spec.labels))
        for key, value in sorted(fields.items()):
            labels = json.loads(key)
            if len(labels) == len(spec.labels):  # else counted before the metric gained labels
                counter.add_metric(labels, value)
        return counter
    histogram = HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    series: dict[str, dict[str, float]] = {}
    for field, value in fields.items():
        key, _, rest = field.partition("|")
        series.setdefault(key, {})[rest] = value
    for key, values in sorted(series.items()):
        cumulative, buckets = 0.0, []
        for bound in [*(str(b) for b in spec.buckets), "+Inf"]:
            cumulative += values.get(f"b|{bound}", 0.0)
            buckets.append((bound, cumulative))
        histogram.add_metric(json.loads(key), buckets, values.get("sum", 0.0))
    return histogram


# --- Operator views: alerts by category and route, call end -> delivered, open state ---
#
# Label sets stay bounded: ``category`` is one the classifier gives (the catalogue's list;
# none: ``other``), ``route`` one of the routing file's route names, ``default`` or ``UNROUTED``,
# ``sink_type`` one of the registry's sink types (never a sink's name). The two gauges
# are read at scrape time from what Redis already holds, in the scrape's one pipeline:
# active silences are one ZCOUNT, open incidents one script over the incident index.

#: ``route`` of an alert that no route and no default took (no route name has brackets).
UNROUTED = "(unrouted)"
#: Incidents looked at per scrape, newest first: far more than are ever open at once.
MAX_INCIDENTS_SCANNED = 5000

_COUNT_OPEN_INCIDENTS = """
local open = 0
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)) do
  local status = redis.call('HGET', ARGV[1] .. id, 'status')
  if status and status ~= 'resolved' then open = open + 1 end
end
return open
"""


class _AlertShape(Protocol):
    """What ``alert_labels`` reads of an alert (``service.analysis.alert.Alert``)."""

    @property
    def severity(self) -> str: ...

    @property
    def issues(self) -> tuple[Any, ...]: ...


def alert_labels(alert: _AlertShape, routes: Iterable[str]) -> dict[str, str]:
    """``callwatch_alerts``' labels: the severity, the first issue's category (errors come
    first) and the first of ``routes`` (the names of the routes that took the alert, in
    order), so each alert is counted once whichever routes ``continue``."""
    category = next((str(getattr(issue, "category", None) or "other")
                     for issue in alert.issues), "other")
    return {"severity": alert.severity, "category": category,
            "route": next(iter(routes), UNROUTED)}


def call_end_latency(call: Mapping[str, Any], now: float) -> float | None:
    """Seconds from the call's end (the ``Timestamp`` of its terminal callback, RFC 2822)
    to ``now``; None when the callback carried no usable timestamp. Never negative (clocks
    differ a little between Twilio and us)."""
    raw = call.get("timestamp")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        ended = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if ended.tzinfo is None:  # "-0000": UTC, in RFC 2822's words "no information"
        ended = ended.replace(tzinfo=UTC)
    return max(0.0, now - ended.timestamp())


def route_names(routing: Any) -> tuple[str, ...]:
    """The ``route`` label's known values: the routing file's route names, then
    ``default`` (``routing``: a ``RoutingConfig`` or None)."""
    names = [route.name for route in routing.routes] if routing is not None else []
    return (*names, DEFAULT_ROUTE)


def alert_delivered(metrics: Metrics, call: Mapping[str, Any], sink_type: str, now: float) -> None:
    """Observe ``callwatch_alert_latency_seconds`` for a per-call alert a sink just took
    (the ledger lets each sink take an alert once, so this is its first delivery)."""
    latency = call_end_latency(call, now)
    if latency is not None:
        metrics.observe("callwatch_alert_latency_seconds", latency, sink_type=sink_type)


def read_state_gauges(pipe: Any, now: float, sinks: Iterable[str]) -> None:
    """Queue the reads ``state_gauges`` renders: open incidents, active silences, then
    each sink's slow flag (written by ``service.delivery.sink_health``)."""
    pipe.eval(_COUNT_OPEN_INCIDENTS, 1, keys.INCIDENTS, keys.INCIDENT_PREFIX,
              MAX_INCIDENTS_SCANNED)
    pipe.zcount(keys.SILENCES, f"({now}", "+inf")
    for name in sinks:
        pipe.exists(keys.sink_slow(name))


def state_gauges(replies: list[Any], sinks: Iterable[str]) -> Iterator[Metric]:
    """``callwatch_incidents_open``, ``callwatch_silences_active`` and
    ``callwatch_sink_slow{sink}`` from the replies to ``read_state_gauges``."""
    open_incidents, active_silences, *slow_flags = replies
    incidents = GaugeMetricFamily("callwatch_incidents_open",
                                  "Incidents open now (not resolved), whole deployment.")
    incidents.add_metric([], int(open_incidents))
    silences = GaugeMetricFamily("callwatch_silences_active",
                                 "Silences in force now, whole deployment.")
    silences.add_metric([], int(active_silences))
    slow = GaugeMetricFamily("callwatch_sink_slow",
                             "1 while a sink is slow (recent sends timed out or took over "
                             "5 s) and held to a small share of the workers.", labels=["sink"])
    for name, found in zip(sinks, slow_flags, strict=True):
        slow.add_metric([name], 1 if found else 0)
    yield incidents
    yield silences
    yield slow


# --- Deployment health: live workers, overdue analyses, configuration drift (slow sinks:
# ``state_gauges``, read in the scrape's one pipeline).
# (Gauges read from Redis at scrape time; written by the workers, see service.roster and
# service.delivery.sink_health.)

#: This process's name in the roster of configuration fingerprints.
_PROCESS = f"web-{os.getpid()}-{socket.gethostname()}"


def deployment_gauges(redis: redis_lib.Redis, fingerprint: str | None,
                      queue_depths: QueueDepths | None, *, now: float) -> Iterator[Metric]:
    """``callwatch_workers``, ``callwatch_analysis_overdue_seconds`` and
    ``callwatch_config_info{fingerprint}``."""
    from service.roster import Roster

    roster = Roster(redis)
    workers = GaugeMetricFamily("callwatch_workers",
                                "Worker processes with a live heartbeat (whole deployment).")
    workers.add_metric([], roster.workers(now=now))
    yield workers
    overdue = GaugeMetricFamily(
        "callwatch_analysis_overdue_seconds",
        "Age of the oldest call whose analysis is due and not started (0 when none).")
    overdue.add_metric([], analysis_overdue_s(redis, queue_depths, now=now))
    yield overdue
    if fingerprint is not None:
        roster.beat(_PROCESS, fingerprint, worker=False, now=now)
    info = GaugeMetricFamily("callwatch_config_info",
                             "Processes running each configuration (sinks and routing), by "
                             "fingerprint: two series mean processes disagree.",
                             labels=["fingerprint"])
    for value, processes in sorted(roster.fingerprints(now=now).items()):
        info.add_metric([value], processes)
    yield info


@runtime_checkable
class WaitingAnalyses(Protocol):
    """When the oldest analysis waiting in the job queue was queued (``workers.queue_depths``)."""

    def oldest_queued_at(self, redis: redis_lib.Redis) -> float | None:
        """Unix time, or None when none waits; raises ``redis.RedisError``."""
        ...


def analysis_overdue_s(redis: redis_lib.Redis, queue_depths: object, *, now: float) -> float:
    """Seconds since the oldest due, not started analysis fell due: a call still in the
    intake past its due time, or an analysis job waiting in the queue."""
    from service.intake import INTAKE_KEY

    oldest: list[tuple[bytes, float]] = redis.zrangebyscore(  # type: ignore[assignment]
        INTAKE_KEY, "-inf", repr(now), start=0, num=1, withscores=True)
    due = [score for _, score in oldest]
    if isinstance(queue_depths, WaitingAnalyses):
        queued = queue_depths.oldest_queued_at(redis)
        if queued is not None:
            due.append(queued)
    return max(0.0, now - min(due)) if due else 0.0
