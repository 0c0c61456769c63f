"""Run by ``tests/integration/test_intake.py`` in a process of its own, gevent-patched as
the web process is. Prints one JSON line.

``turn``: a turn taken while two greenlets keep the loop busy for ever (a ping-pong over a
socket pair): whether it returned, and when."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from service.web.gevent_turn import take_turn  # noqa: E402


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
    scenarios = {"turn": turn}
    scenarios[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
