"""Redis commands packed by hiredis in one call, for every client callwatch builds.

redis-py's hiredis packer (``HiredisRespSerializer.pack``) walks the arguments of every
command in Python before hiredis packs them: a scan for ``memoryview``, then a tuple of
each argument run through the client's ``Encoder``. That walk is about 8 µs of a 10-argument
command, against under 1 µs for hiredis itself, and it was 9 % of a worker's CPU in
``bench/e2e.py`` (about 40 commands an alerting call, scripts with a dozen arguments).

hiredis packs ``str`` (UTF-8, strict), ``bytes``, ``int`` and ``float`` (``repr``) exactly as
redis-py's ``Encoder`` does for a client with the default encoding
(``tests/unit/test_redis_packing.py`` compares the bytes), and refuses anything else with
``TypeError``. So :class:`DirectPacker` hands the arguments to hiredis as they are, and
only when hiredis refuses them (``None``, ``bool``, an ``IntEnum``, ``bytearray``: redis-py
raises its ``DataError`` for the first two), an argument is a ``memoryview`` or the
command's name has a space (``CLIENT LIST``, which redis-py splits) does it fall back to
redis-py's own packer.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis._parsers.encoders import Encoder
from redis.connection import HIREDIS_AVAILABLE, HiredisRespSerializer, PythonRespSerializer

if HIREDIS_AVAILABLE:
    import hiredis

#: redis-py's ``buffer_cutoff`` default, for the fallback.
_BUFFER_CUTOFF = 6000


class DirectPacker:
    """A redis-py ``command_packer`` for clients with the default encoding (UTF-8, strict)."""

    def __init__(self) -> None:
        encode = Encoder("utf-8", "strict", False).encode
        self._fallback = HiredisRespSerializer(
            PythonRespSerializer(_BUFFER_CUTOFF, encode).pack, encode).pack

    def pack(self, *args: Any) -> list[bytes]:
        name = args[0]
        # A memoryview goes redis-py's way: hiredis would send a sliced one's whole buffer.
        if isinstance(name, str) and " " not in name and memoryview not in map(type, args):
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass  # None, bool, an IntEnum, bytearray: redis-py's way (its DataError, or a copy)
        return self._fallback(*args)


#: One packer for every client (it holds no state): clients' connection options stay equal,
#: as RQ compares them (``BaseRegistry.__eq__``).
_PACKER = DirectPacker() if HIREDIS_AVAILABLE else None
_UTF8 = frozenset({"utf-8", "utf8"})


def pack_directly(client: Redis) -> Redis:
    """Have ``client``'s new connections pack with :class:`DirectPacker` when it applies:
    hiredis is installed and the client keeps redis-py's default encoding (whether set by
    options or by ``REDIS_URL``'s query); return ``client``."""
    options = client.connection_pool.connection_kwargs
    if (_PACKER is not None and "command_packer" not in options
            and str(options.get("encoding", "utf-8")).lower() in _UTF8
            and options.get("encoding_errors", "strict") == "strict"):
        options["command_packer"] = _PACKER
    return client
