"""The RQ edge: the only package that imports RQ.

Map:

- ``jobs``: the jobs RQ runs (a domain step, then what it asks to schedule).
- ``queues``: the queues, job ids and enqueues.
- ``worker``, ``pool``, ``context``: the worker's start-up (``python -m workers.worker``),
  its worker processes, and the Redis connection and settings they share.
- ``wsgi``: the web process's entry point (``workers.wsgi:app``).
- ``rq_adaptations/``: every adaptation of RQ, one module each, and (in its docstring)
  the index of the RQ behaviour each changes or relies on and the test that pins it.

Not adaptations of RQ: ``intake_mover`` (due calls into the analysis queue),
``heartbeat_pinger`` (``HEARTBEAT_URL``), ``queue_depths`` (``/metrics``' view of the
queues), ``digest_clock`` (due digests and quiet PagerDuty groups, on a clock).
"""
