"""Redis connection pools whose fork check costs no system call per command.

redis-py's pools compare ``os.getpid()`` with the pid they were made in before every
checkout and every release (``ConnectionPool._checkpid``), so that a forked child starts
with connections of its own. ``getpid`` is a system call (glibc stopped caching it), two
for every command; a worker sends some 40 commands an alerting call (``bench/e2e.py``,
profiled: about 2 % of a worker's CPU). Here the process's pid is kept in a variable that
``os.register_at_fork`` renews in every child, and redis-py's own check runs only when the
pool's pid differs from it: in a forked child, at the pool's first use there, exactly
when redis-py's check would have found the difference.
"""

from __future__ import annotations

import os

from redis import BlockingConnectionPool, ConnectionPool

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class ForkCheckedPool(ConnectionPool):
    """redis-py's ``ConnectionPool``, its fork check without a system call."""

    def _checkpid(self) -> None:
        if self.pid != _pid:
            super()._checkpid()


class ForkCheckedBlockingPool(ForkCheckedPool, BlockingConnectionPool):
    """redis-py's ``BlockingConnectionPool``, its fork check without a system call."""
