"""The packer every callwatch Redis client uses sends the bytes redis-py's would, and
refuses what redis-py refuses (``service.redis_packing``)."""

from __future__ import annotations

import enum

import pytest
from redis._parsers.encoders import Encoder
from redis.connection import HiredisRespSerializer, PythonRespSerializer
from redis.exceptions import DataError

from service.redis_packing import DirectPacker

pytest.importorskip("hiredis")

_encode = Encoder("utf-8", "strict", False).encode


class _Level(enum.IntEnum):
    HIGH = 2


class _Seconds(float):
    pass


REDIS_PY = HiredisRespSerializer(PythonRespSerializer(6000, _encode).pack, _encode)

COMMANDS = [
    ("SET", "callwatch:k", "välue ✓"),
    ("EVALSHA", "a" * 40, 2, "k1", "k2", 1.5, 0.1, 1e20, 1e-07, -0.0, float("inf"), 2**70, -5),
    ("HSET", b"rq:job:x", b"data", b"\x00\xff" * 5000, "status", "queued"),
    ("CLIENT LIST", "TYPE", "normal"),  # a name with a space: split, as redis-py does
    ("SET", "k", memoryview(b"view")),
    ("SET", "k", bytearray(b"array")),
    ("ZADD", "z", "NX", 1712345678.123456, "member"),
    ("SET", "k", memoryview(b"abcdef")[::2]),  # sliced: hiredis alone would send all six bytes
    ("SET", "k", "x" * 7000),  # over redis-py's buffer cutoff
    ("SET", "k", _Level.HIGH),  # an int's subclass: redis-py's repr, not the number
    ("SET", "k", _Seconds(1.5)),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_bytes_on_the_wire_are_redis_pys(command: tuple[object, ...]) -> None:
    def wire(chunks: list[bytes]) -> bytes:
        return b"".join(bytes(chunk) for chunk in chunks)  # redis-py may hand back views

    assert wire(DirectPacker().pack(*command)) == wire(REDIS_PY.pack(*command))


@pytest.mark.parametrize("bad", [None, True, False, ["a list"], {"a": 1}])
def test_what_redis_py_refuses_is_still_refused(bad: object) -> None:
    with pytest.raises(DataError):
        REDIS_PY.pack("SET", "k", bad)
    with pytest.raises(DataError):
        DirectPacker().pack("SET", "k", bad)


def test_a_string_utf8_cannot_encode_is_refused_as_redis_py_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        REDIS_PY.pack("SET", "k", "\ud800")
    with pytest.raises(UnicodeEncodeError):
        DirectPacker().pack("SET", "k", "\ud800")
