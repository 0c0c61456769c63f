"""Run by ``tests/integration/test_intake.py`` in a process of its own, gevent-patched as
the web process is: admissions in greenlets with request deadlines, against Redis behind
a proxy that holds each reply for ``--delay`` seconds. Prints one JSON line: per call, what
its greenlet saw and whether the call was written."""

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


def slow_proxy(upstream: tuple[str, int], delay: list[float]) -> int:
    """A TCP proxy whose replies from ``upstream`` wait ``delay[0]`` seconds; returns its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def pipe(source: socket.socket, sink: socket.socket, slow: bool) -> None:
        while data := source.recv(65536):
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


def main(host: str, port: int) -> None:
    delay = [0.0]
    client = redis.Redis(port=slow_proxy((host, port), delay), socket_timeout=5)
    intake = Intake(client, batched=True)

    def call(n: int) -> dict[str, str]:
        return {"call_sid": f"CA{n:032x}", "status": "completed"}

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


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
