"""Run by ``tests/integration/test_intake.py`` in a process of its own, gevent-patched as
the web process is, against Redis behind a proxy that can hold each reply and counts the
client's writes. Prints one JSON line.

``deadline``: admissions in greenlets with request deadlines, replies held 1 s, through
a batched intake that gathers with a turn: per call, what its greenlet saw and whether
the call was written. ``gather``: ten requests admitting at once through the intake the
web app builds (``create_app``) and through one that does not gather: their answers, and
how many round trips carried them. ``turn``: a turn taken while two greenlets keep the
loop busy for ever (a ping-pong over a socket pair): whether it returned, and when."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from devtools.processes import settings_env  # noqa: E402
from service.intake import Intake, call_key  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.web import create_app  # noqa: E402
from service.web.gevent_turn import take_turn  # noqa: E402


class RequestTooSlow(BaseException):
    """As gunicorn_workers' deadline: a BaseException thrown into the request's greenlet."""


def slow_proxy(upstream: tuple[str, int], delay: list[float], writes: list[int]) -> int:
    """A TCP proxy whose replies from ``upstream`` wait ``delay[0]`` seconds and which counts
    the client's writes in ``writes[0]``; returns its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def pipe(source: socket.socket, sink: socket.socket, slow: bool) -> None:
        while data := source.recv(65536):
            if not slow:
                writes[0] += 1
            if slow and delay[0]:
                gevent.sleep(delay[0])
            sink.sendall(data)
        sink.close()

    def serve() -> None:
        while True:
            client, _ = server.accept()
            backend = socket.create_connection(upstream)
            gevent.spawn(pipe, client, backend, False)
            gevent.spawn(pipe, backend, client, True)

    gevent.spawn(serve)
    return server.getsockname()[1]


def call(n: int) -> dict[str, str]:
    return {"call_sid": f"CA{n:032x}", "status": "completed"}


def deadline(host: str, port: int) -> None:
    delay = [0.0]
    client = redis.Redis(port=slow_proxy((host, port), delay, [0]), socket_timeout=5)
    intake = Intake(client, batched=True, gather=take_turn)
    intake.admit(call(1), due_at=1.0)  # connected, script loaded
    delay[0] = 1.0
    seen: dict[int, str] = {}

    def request(n: int, deadline: float) -> None:
        try:
            with gevent.Timeout(deadline, RequestTooSlow):
                seen[n] = "new" if intake.admit(call(n), due_at=1.0) else "duplicate"
        except BaseException as error:
            seen[n] = type(error).__name__

    first = gevent.spawn(request, 10, 10)  # a round trip alone: answered after 1 s
    gevent.sleep(0.1)
    short = gevent.spawn(request, 11, 1.5)  # carries the next round trip; its deadline fires mid-way
    gevent.sleep(0.01)
    others = [gevent.spawn(request, n, 10) for n in (12, 13, 14)]  # in that round trip too
    gevent.joinall([first, short, *others])
    delay[0] = 0.0
    written = {n: bool(client.exists(call_key(call(n)["call_sid"]))) for n in seen}
    print(json.dumps({"seen": seen, "written": written}))


def gather(host: str, port: int) -> None:
    result: dict[str, object] = {}
    for name in ("web app", "alone"):
        writes = [0]
        client = redis.Redis(port=slow_proxy((host, port), [0.0], writes), socket_timeout=5)
        if name == "web app":
            settings = Settings.from_env(settings_env(f"redis://{host}:{port}"))
            intake = create_app(settings, redis=client).extensions["callwatch"].intake
        else:
            intake = Intake(client, batched=True)
        intake.admit(call(1), due_at=1.0)  # connected, script loaded
        writes[0] = 0
        first = 100 if name == "web app" else 200
        requests = [gevent.spawn(intake.admit, call(n), due_at=1.0)
                    for n in range(first, first + 10)]
        gevent.joinall(requests, raise_error=True)
        result[name] = {"answers": [r.value for r in requests], "round_trips": writes[0]}
        client.close()
    print(json.dumps(result))


def turn(_host: str, _port: int) -> None:
    left, right = socket.socketpair()

    def volley(mine: socket.socket, serve: bool) -> None:
        if serve:
            mine.sendall(b"x")
        while mine.recv(1):
            mine.sendall(b"x")

    players = [gevent.spawn(volley, left, True), gevent.spawn(volley, right, False)]
    gevent.sleep(0.05)
    began = time.monotonic()
    taker = gevent.spawn(take_turn)
    taker.join(timeout=5)
    print(json.dumps({"returned": taker.dead, "after_s": round(time.monotonic() - began, 3)}))
    gevent.killall(players)


if __name__ == "__main__":
    scenarios = {"deadline": deadline, "gather": gather, "turn": turn}
    scenarios[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
