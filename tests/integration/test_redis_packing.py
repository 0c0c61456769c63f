"""Every client callwatch builds packs its commands with ``DirectPacker`` and works on a
real Redis as redis-py's own packer did: values, scripts, pipelines, two-word commands."""

from __future__ import annotations

import pytest
import redis as redis_lib

from devtools.redis_server import RedisServer
from service.redis_packing import DirectPacker
from service.redis_scripts import script
from service.settings import _redis_client, redis_from_env


@pytest.mark.parametrize("bounded", [False, True], ids=["pool", "bounded pool"])
def test_callwatch_clients_pack_directly_and_work(redis_server: RedisServer, bounded: bool) -> None:
    client = (_redis_client(redis_server.url, True, 3, {}) if bounded
              else redis_from_env({"REDIS_URL": redis_server.url}))
    try:
        assert isinstance(client.connection_pool.connection_kwargs["command_packer"], DirectPacker)
        client.set("callwatch:test:float", 0.1)
        client.set("callwatch:test:text", "välue ✓")
        assert client.get("callwatch:test:float") == b"0.1"
        assert client.get("callwatch:test:text") == "välue ✓".encode()
        echo = script(client, "return {ARGV[1], ARGV[2], KEYS[1]}")
        assert echo(keys=["callwatch:test:k"], args=[2**70, 1e-07]) == [
            b"1180591620717411303424", b"1e-07", b"callwatch:test:k"]
        pipe = client.pipeline()
        pipe.incrbyfloat("callwatch:test:n", 1.5).incr("callwatch:test:m", 3)
        assert pipe.execute() == [1.5, 3]
        own = client.client_id()  # CLIENT ID; then CLIENT LIST, a name of two words
        assert str(own) in {c["id"] for c in client.client_list(_type="normal")}
        with pytest.raises(redis_lib.DataError):
            client.set("callwatch:test:none", None)  # type: ignore[arg-type]
    finally:
        client.flushdb()
        client.close()
        client.connection_pool.disconnect()  # a pool passed in is not closed with its client


@pytest.mark.parametrize("how", ["option", "url"])
def test_a_client_with_an_encoding_of_its_own_keeps_redis_pys_packer(
        redis_server: RedisServer, how: str) -> None:
    client = (redis_from_env({"REDIS_URL": redis_server.url}, encoding="latin-1") if how == "option"
              else redis_from_env({"REDIS_URL": f"{redis_server.url}?encoding=latin-1"}))
    try:
        assert "command_packer" not in client.connection_pool.connection_kwargs
        client.set("callwatch:test:latin", "é")
        assert client.get("callwatch:test:latin") == "é".encode("latin-1")
    finally:
        client.flushdb()
        client.close()
