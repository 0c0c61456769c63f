"""Putting a job that no worker will run back at the front of its queue, once.

Used for a job taken off its queue that RQ never marked started: one its own worker held
when Redis failed it (``workers.rq_adaptations.job_in_hand``), or one whose worker died
(``workers.rq_adaptations.liveness``). Its started-registry entries, if it has any, go in
the same script: an entry left behind would, once it expired, have RQ's clean-up retry the
re-run job or drop it. When the job had entries, only the caller that removed one puts it
back, so two workers recovering it at once put it back once; a job already in its queue
is not pushed again.
"""

from __future__ import annotations

from redis import Redis
from rq.queue import Queue

from service.redis_scripts import script

_PUT_BACK = """
local removed = 0
for i = 2, #ARGV do
  removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
end
if (#ARGV > 1 and removed == 0) or redis.call('LPOS', KEYS[2], ARGV[1]) then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"""


def started_entries(redis: Redis, queue: Queue, job_id: str) -> list[str]:
    """The job's entries (``<job id>:<execution id>``) in its queue's started registry."""
    members: list[bytes] = redis.zrange(queue.started_job_registry.key, 0, -1)  # type: ignore[assignment]
    return [m.decode() for m in members if m.decode().split(":", 1)[0] == job_id]


def put_back(redis: Redis, queue: Queue, job_id: str, entries: list[str]) -> bool:
    """Remove ``entries`` from the started registry and push the job at the front of its
    queue; False when another caller removed them first or the job is already queued."""
    return bool(script(redis, _PUT_BACK)(keys=[queue.started_job_registry.key, queue.key],
                                         args=[job_id, *entries]))
