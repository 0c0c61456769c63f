"""Run by ``tests/integration/test_intake.py`` in a process of its own, gevent-patched as
the web process is, with the web process's intake (batched, gathering with
``gevent.idle``), against Redis behind a proxy that can hold each reply and counts the
client's writes. Prints one JSON line.

``deadline``: admissions in greenlets with request deadlines, replies held 1 s: per
call, what its greenlet saw and whether the call was written. ``gather``: ten requests
admitting at once: their answers, and how many round trips carried them with and
without gathering."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from service.intake import Intake, call_key  # noqa: E402


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
    intake = Intake(client, batched=True, gather=gevent.idle)
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
    for name, hook in (("gathered", gevent.idle), ("alone", None)):
        writes = [0]
        client = redis.Redis(port=slow_proxy((host, port), [0.0], writes), socket_timeout=5)
        intake = Intake(client, batched=True, gather=hook)
        intake.admit(call(1), due_at=1.0)  # connected, script loaded
        writes[0] = 0
        first = 100 if hook else 200
        requests = [gevent.spawn(intake.admit, call(n), due_at=1.0)
                    for n in range(first, first + 10)]
        gevent.joinall(requests, raise_error=True)
        result[name] = {"answers": [r.value for r in requests], "round_trips": writes[0]}
        client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    {"deadline": deadline, "gather": gather}[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
