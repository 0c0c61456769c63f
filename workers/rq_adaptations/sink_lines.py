"""A slow sink delays only itself; a healthy one gets every worker process it needs.

What this changes in RQ, and why: RQ runs whichever job is first in the delivery queue,
so a receiver that hangs for its whole timeout takes every worker process in turn (each
attempt holds one for up to the sink's timeout) and alerts to every other sink, and the
analyses behind them, wait. A guard that holds every sink to a share at all times makes
healthy sinks late under load (issue 19: p99 58 s at 5 calls/s), so a healthy sink may
use every live worker process but one (the last is kept for the others while a sink that
has just begun to hang is not yet known to be slow), and only a sink marked slow
(``service.delivery.sink_health``: its recent sends timed out or took over 5 s) is held
to ``SLOTS_PER_SINK``. Before a delivery runs, the worker takes one of its sink's slots
(``callwatch:sink-slots:<sink>``, job ids scored by deadline); with none free the job id
is parked, in order, at the end of the sink's own line (``callwatch:sink-line:<sink>``,
a Redis list) and the worker takes the next job. A
parked delivery costs nothing while it waits: no scheduler round, no re-queue. When a
delivery holding a slot ends, the head of the line gets the slot and goes to the front of
RQ's delivery queue; once the sink answers promptly again the whole line goes back, in
order. Every maintenance pass also releases what a dead worker's slot would have
(slots expire at their deadline). Each step is one Lua script, so a job is always in
exactly one of: the queue, the line, a worker's hands.
"""

from __future__ import annotations

import time

import structlog
from redis import Redis
from rq.job import Job
from rq.queue import Queue

from service import keys
from service.redis_scripts import script
from service.roster import BEAT_TTL_S
from workers.queues import DELIVERY_JOB_TIMEOUT_S, DELIVERY_QUEUE, delivery_sink
from workers.rq_adaptations.dequeue import PromptDequeue

#: Worker processes (deployment-wide) a slow sink may hold at once.
SLOTS_PER_SINK = 2
#: The most parked deliveries one release moves back to the queue.
RELEASE_BATCH = 500

log = structlog.get_logger(__name__)

# How many deliveries to one sink may run at once: ``SLOTS_PER_SINK`` while it is slow,
# else every live worker process but one (so even a sink that has just begun to hang
# cannot take the last process from the others before it is known to be slow).
# KEYS[1] slow flag, KEYS[2] slots, KEYS[5] live workers; ARGV[1] now, ARGV[4] slots when
# slow, ARGV[7] how long a worker's beat counts.
_CAP = """
local function cap()
  if redis.call('EXISTS', KEYS[1]) == 1 then return tonumber(ARGV[4]) end
  local live = redis.call('ZCOUNT', KEYS[5], tonumber(ARGV[1]) - tonumber(ARGV[7]), '+inf')
  return math.max(tonumber(ARGV[4]), live - 1)
end
"""

# KEYS: slow flag, slots, line, lines index, live workers. ARGV: now, deadline, job id,
# slots when slow, sink, 'try' (a send outside a job: never for a slow sink, never parked)
# or '', beat TTL. 1: run in a slot; 0: parked at the end of the sink's line (or, with
# 'try', nothing taken).
_ADMIT = _CAP + """
if ARGV[6] == 'try' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[2]) < cap() and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], math.ceil((tonumber(ARGV[2]) - tonumber(ARGV[1])) * 1000))
  return 1
end
if ARGV[6] == 'try' then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[5])
return 0
"""

# KEYS: slow flag, slots, line, lines index, live workers, RQ queue. ARGV: now, deadline,
# job id or '', slots when slow, sink, batch, beat TTL. Frees the job's slot, then gives
# free slots to the head of the line and puts those at the front of the queue, in order.
_RELEASE = _CAP + """
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
if redis.call('LLEN', KEYS[3]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local limit = cap()
local moved = {}
while #moved < tonumber(ARGV[6]) and redis.call('ZCARD', KEYS[2]) < limit do
  local id = redis.call('LPOP', KEYS[3])
  if not id then break end
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  moved[#moved + 1] = id
end
for i = #moved, 1, -1 do redis.call('LPUSH', KEYS[6], moved[i]) end
if redis.call('LLEN', KEYS[3]) == 0 then redis.call('SREM', KEYS[4], ARGV[5]) end
return #moved
"""


class SinkLines(PromptDequeue):
    """Runs a delivery in one of its sink's slots; parks it in the sink's line otherwise."""

    slots_per_sink = SLOTS_PER_SINK
    #: The sink whose slot the job in hand holds (None: no slot).
    _slot_sink: str | None = None

    def admit(self, job: Job, queue: Queue) -> bool:
        sink = delivery_sink(job)
        self._slot_sink = None
        if sink is None:
            return super().admit(job, queue)
        moment = time.time()
        admitted = int(script(self.connection, _ADMIT)(
            keys=_line_keys(sink), args=[repr(moment), repr(_deadline(moment)), job.id,
                                         self.slots_per_sink, sink, "", BEAT_TTL_S]))
        if not admitted:
            log.info("delivery_parked", sink=sink, job_id=job.id)
            return False
        self._slot_sink = sink
        return super().admit(job, queue)

    def execute_job(self, job: Job, queue: Queue) -> None:
        sink, self._slot_sink = self._slot_sink, None
        try:
            super().execute_job(job, queue)
        finally:
            if sink is not None:
                release_line(self.connection, sink, job.id, slots=self.slots_per_sink)

    def run_maintenance_tasks(self) -> None:
        release_lines(self.connection, slots=self.slots_per_sink)
        super().run_maintenance_tasks()


def take_slot(redis: Redis, sink: str, slot_id: str, *,
              slots: int = SLOTS_PER_SINK) -> bool:
    """Take a slot of ``sink`` for a send made outside a delivery job (``workers.jobs``
    sends to a healthy sink inline); False, with nothing taken or parked, when the sink is
    slow or no slot is free. Give it back with ``release_line(redis, sink, slot_id)``."""
    moment = time.time()
    return bool(script(redis, _ADMIT)(
        keys=_line_keys(sink), args=[repr(moment), repr(_deadline(moment)), slot_id, slots,
                                     sink, "try", BEAT_TTL_S]))


def release_line(redis: Redis, sink: str, job_id: str = "", *,
                 slots: int = SLOTS_PER_SINK) -> int:
    """Free ``job_id``'s slot (if given) and move what may run from the sink's line to the
    front of the delivery queue; return how many moved."""
    moment = time.time()
    moved = 0
    release = script(redis, _RELEASE)
    line_keys = [*_line_keys(sink), Queue.redis_queue_namespace_prefix + DELIVERY_QUEUE]
    while True:
        batch = int(release(keys=line_keys, args=[repr(moment), repr(_deadline(moment)), job_id,
                                                  slots, sink, RELEASE_BATCH, BEAT_TTL_S]))
        moved += batch
        job_id = ""
        if batch < RELEASE_BATCH:
            break
    if moved:
        log.info("deliveries_released", sink=sink, moved=moved)
    return moved


def release_lines(redis: Redis, *, slots: int = SLOTS_PER_SINK) -> int:
    """Every sink with a line: free expired slots and move what may run (maintenance)."""
    sinks: set[bytes] = redis.smembers(keys.SINK_LINES)  # type: ignore[assignment]
    return sum(release_line(redis, sink.decode(), slots=slots) for sink in sinks)


def _line_keys(sink: str) -> list[str]:
    """The keys both scripts start with: slow flag, slots, line, lines index, live workers."""
    return [keys.sink_slow(sink), keys.sink_slots(sink), keys.sink_line(sink), keys.SINK_LINES,
            keys.WORKERS_ALIVE]


def _deadline(moment: float) -> float:
    return moment + DELIVERY_JOB_TIMEOUT_S + 5
