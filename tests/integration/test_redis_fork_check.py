"""A client callwatch builds, used in a forked child (the worker pool forks its processes),
talks over connections of the child's own, and leaves the parent's working: the fork
check that runs without a system call still finds the fork."""

from __future__ import annotations

import os

import pytest

from devtools.redis_server import RedisServer
from service.settings import _redis_client, redis_from_env


@pytest.mark.parametrize("bounded", [False, True], ids=["pool", "bounded pool"])
def test_a_forked_child_gets_connections_of_its_own(redis_server: RedisServer, bounded: bool) -> None:
    client = (_redis_client(redis_server.url, True, 3, {}) if bounded
              else redis_from_env({"REDIS_URL": redis_server.url}))
    try:
        parent_id = client.client_id()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its connection's id, then leave without clean-up
            try:
                os.write(write_end, str(client.client_id()).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        child_id = int(os.read(read_end, 64) or b"0")
        os.close(read_end)
        os.waitpid(pid, 0)
        assert child_id not in (0, parent_id)
        assert client.client_id() == parent_id  # the parent's connection, still its own
        assert client.ping()
    finally:
        client.close()
        client.connection_pool.disconnect()
