"""The web process as deployed (gunicorn, ``gunicorn.conf.py``, default workers) under slow
and idle clients: 200 silent connections and 16 that drip their headers must not keep
``/healthz`` or a signed callback from being answered.

The bound here is generous (``ANSWER_BOUND_S``) so a busy machine cannot fail it; the
answer times themselves are measured by ``bench/slow_clients.py``.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator

import pytest
import redis as redis_lib
import requests

from devtools.processes import Process, settings_env
from devtools.redis_server import RedisServer, free_port
from devtools.slow_clients import SlowClients
from devtools.web_client import call_sid, callback_params, sign
from service.calls import CALLBACK_PATH

GUNICORN = ["-m", "gunicorn", "-c", "gunicorn.conf.py", "workers.wsgi:app"]
#: Far above a normal answer (milliseconds), far below what a starved server takes
#: (a thread per silent connection for seconds each: minutes for the last in line).
ANSWER_BOUND_S = 5.0
#: How long the slow clients are held open while requests are checked.
PRESSURE_S = 8.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[int, str]]:
    """gunicorn with the repository's configuration and its default worker count."""
    with RedisServer() as server:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = settings_env(server.url, PORT=str(port), HOST="127.0.0.1", PUBLIC_BASE_URL=base)
        process = Process([sys.executable, *GUNICORN], env).start()
        try:
            process.wait_for(lambda: _answers(base), timeout=30)
            yield port, base
        finally:
            process.close()


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _signed_callback(base: str, n: int) -> requests.Response:
    params = callback_params(call_sid(0x5100 + n))
    url = base + CALLBACK_PATH
    return requests.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)},
                         timeout=ANSWER_BOUND_S)


def test_slow_and_idle_clients_do_not_starve_health_or_callbacks(deployed) -> None:
    """With 200 idle connections and 16 trickling headers open, /healthz and signed callbacks
    are each answered (204/200) well within the bound, again and again."""
    port, base = deployed
    with SlowClients(port, idle=200, trickle=16, trickle_every_s=1.0) as attack:
        settle = time.monotonic() + 10  # let every slow connection be open first
        while attack.opened < 216 and time.monotonic() < settle:
            time.sleep(0.1)
        assert attack.opened >= 216
        until = time.monotonic() + PRESSURE_S
        n = 0
        while time.monotonic() < until:
            health = requests.get(f"{base}/healthz", timeout=ANSWER_BOUND_S)
            assert health.status_code == 200
            assert _signed_callback(base, n).status_code == 204
            n += 1
            time.sleep(0.5)


def test_a_head_that_never_ends_is_cut_off(deployed) -> None:
    """A connection that keeps dripping header lines is closed by the server after the
    header-read limit instead of being held for as long as the client likes."""
    port, _ = deployed
    with SlowClients(port, idle=0, trickle=1, trickle_every_s=0.5) as attack:
        deadline = time.monotonic() + 30
        while attack.closed_by_server == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert attack.closed_by_server >= 1


def test_a_body_that_drips_is_cut_off_at_the_request_deadline(redis_server: RedisServer,
                                                               redis: redis_lib.Redis) -> None:
    """A request whose body arrives a byte at a time is cut off after gunicorn's `timeout`
    (3 s here) and its connection closed, instead of holding its connection for as long as
    the client likes; nothing is written."""
    port = free_port()
    env = settings_env(redis_server.url, PORT=str(port), HOST="127.0.0.1",
                       WEB_CONCURRENCY="1", GUNICORN_CMD_ARGS="--timeout 3")
    process = Process([sys.executable, *GUNICORN], env).start()
    try:
        process.wait_for(lambda: _answers(f"http://127.0.0.1:{port}"), timeout=30)
        head = (f"POST {CALLBACK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n"
                "X-Twilio-Signature: bm9wZQ==\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=0.1) as sock:
            sock.sendall(head)
            closed = False
            for _ in range(300):  # a byte every 0.1 s: the whole body would take 100 s
                try:
                    sock.sendall(b"a")
                    closed = sock.recv(1024) == b""
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
                if closed:
                    break
        assert closed
        assert [k for k in redis.scan_iter() if not k.startswith(b"callwatch:metrics:")] == []
        process.wait_for(lambda: bool(process.events("Request from ip=127.0.0.1 cut off after 3 s "
                                                     "(timeout)")), timeout=10)
    finally:
        process.close()
