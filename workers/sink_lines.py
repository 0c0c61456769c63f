"""A slow sink delays only itself; a healthy one gets every worker process it needs.

What this changes in RQ, and why: RQ runs whichever job is first in the delivery queue,
so a receiver that hangs for its whole timeout takes every worker process in turn (each
attempt holds one for up to the sink's timeout) and alerts to every other sink, and the
analyses behind them, wait. A guard that holds every sink to a share at all times makes
healthy sinks late under load (issue 19: p99 58 s at 5 calls/s), so it engages only for
a sink marked slow (``service.delivery.sink_health``: its recent sends timed out or took
over 5 s). Then, before a delivery to it runs, the worker takes one of its
``SLOTS_PER_SINK`` slots (``callwatch:sink-slots:<sink>``, job ids scored by deadline);
with none free the job id is parked, in order, at the end of the sink's own line
(``callwatch:sink-line:<sink>``, a Redis list) and the worker takes the next job. A
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
from workers.dequeue import PromptDequeue
from workers.queues import DELIVERY_JOB_TIMEOUT_S, DELIVERY_QUEUE, delivery_sink, queue

#: Worker processes (deployment-wide) a slow sink may hold at once.
SLOTS_PER_SINK = 2
#: The most parked deliveries one release moves back to the queue.
RELEASE_BATCH = 500

log = structlog.get_logger(__name__)

# KEYS: slow flag, slots, line, lines index. ARGV: now, deadline, job id, slots, sink.
# 1: run (sink healthy); 2: run in a slot; 0: parked at the end of the sink's line.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 2
end
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[4]) and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], math.ceil((tonumber(ARGV[2]) - tonumber(ARGV[1])) * 1000))
  return 2
end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[5])
return 0
"""

# KEYS: slow flag, slots, line, lines index, RQ queue. ARGV: now, deadline, job id or '',
# slots, sink, batch. Frees the job's slot, then moves the head of the line to the front
# of the queue: one per free slot while the sink is slow, else all (in batches).
_RELEASE = """
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local slow = redis.call('EXISTS', KEYS[1]) == 1
local moved = {}
while #moved < tonumber(ARGV[6]) do
  if slow and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then break end
  local id = redis.call('LPOP', KEYS[3])
  if not id then break end
  if slow then redis.call('ZADD', KEYS[2], ARGV[2], id) end
  moved[#moved + 1] = id
end
for i = #moved, 1, -1 do redis.call('LPUSH', KEYS[5], moved[i]) end
if redis.call('LLEN', KEYS[3]) == 0 then redis.call('SREM', KEYS[4], ARGV[5]) end
return #moved
"""


class SinkLines(PromptDequeue):
    """Runs a delivery to a slow sink only in one of its slots; parks it in line otherwise."""

    slots_per_sink = SLOTS_PER_SINK
    #: The sink whose slot the job in hand holds (None: no slot).
    _slot_sink: str | None = None

    def admit(self, job: Job, queue: Queue) -> bool:
        sink = delivery_sink(job)
        self._slot_sink = None
        if sink is None:
            return super().admit(job, queue)
        moment = time.time()
        verdict = int(self.connection.eval(  # type: ignore[arg-type]
            _ADMIT, 4, keys.sink_slow(sink), keys.sink_slots(sink), keys.sink_line(sink),
            keys.SINK_LINES, repr(moment), repr(_deadline(moment)), job.id,
            self.slots_per_sink, sink))
        if verdict == 0:
            log.info("delivery_parked", sink=sink, job_id=job.id)
            return False
        if verdict == 2:
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


def release_line(redis: Redis, sink: str, job_id: str = "", *,
                 slots: int = SLOTS_PER_SINK) -> int:
    """Free ``job_id``'s slot (if given) and move what may run from the sink's line to the
    front of the delivery queue; return how many moved."""
    moment = time.time()
    moved = 0
    while True:
        batch = int(redis.eval(  # type: ignore[arg-type]
            _RELEASE, 5, keys.sink_slow(sink), keys.sink_slots(sink), keys.sink_line(sink),
            keys.SINK_LINES, queue(DELIVERY_QUEUE, redis).key, repr(moment),
            repr(_deadline(moment)), job_id, slots, sink, RELEASE_BATCH))
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


def _deadline(moment: float) -> float:
    return moment + DELIVERY_JOB_TIMEOUT_S + 5
