"""Client CPU per HTTP exchange: requests' own way against the worker's ``LeanSession``
(``service.http_session``), with urllib3 alone as the floor.

A loopback server in another process answers HTTP/1.1 with keep-alive (one write per
answer, so no delayed-ACK stall); the client sends an Insights-like GET (params, Basic
auth) and a webhook-like POST (2 KB of JSON), each read to its end through ``read_capped``
as the worker reads them, and reports its own user+system CPU per exchange
(``getrusage``). Rounds interleave the ways; the table gives each way's median.

    .venv/bin/python bench/http_session.py [--exchanges 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.server
import multiprocessing
import resource
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.http import read_capped
from service.http_session import http_session

_ANSWER = b'{"events": [], "meta": {"next_page_url": null}}' * 40


def _serve(ports: Any) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return None

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(_ANSWER) + _ANSWER)

        do_GET = do_POST = _answer

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ports.put(server.server_port)
    server.serve_forever()


def _cpu_us(exchange: Callable[[], None], count: int) -> float:
    for _ in range(50):
        exchange()
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(count):
        exchange()
    after = resource.getrusage(resource.RUSAGE_SELF)
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return spent / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ports.get()}"
    get_url, post_url = f"{base}/v1/Voice/CA0/Events", f"{base}/hooks/x"
    params = {"PageSize": "100", "Edge": "sdk_edge"}
    body = b'{"alert": "' + b"x" * 2000 + b'"}'
    plain = requests.Session()
    plain.trust_env = False
    lean = http_session({})
    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(base.rsplit(":", 1)[1]), maxsize=4)

    def through(session: requests.Session, method: str) -> Callable[[], None]:
        def exchange() -> None:
            if method == "GET":
                response = session.get(get_url, params=params, auth=("AC0", "token"),
                                       timeout=(3.05, 10), allow_redirects=False, stream=True)
            else:
                response = session.post(post_url, data=body, timeout=(3.05, 10),
                                        headers={"Content-Type": "application/json"},
                                        allow_redirects=False, stream=True)
            with response:
                read_capped(response, 1 << 20)
        return exchange

    def floor(method: str) -> Callable[[], None]:
        def exchange() -> None:
            answer = pool.urlopen(method, "/v1/Voice/CA0/Events?PageSize=100&Edge=sdk_edge"
                                  if method == "GET" else "/hooks/x",
                                  body=None if method == "GET" else body,
                                  preload_content=False, redirect=False, retries=False,
                                  timeout=urllib3.Timeout(3.05, 10))
            while answer.read1(65536):
                pass
            answer.release_conn()
        return exchange

    print(f"client CPU per exchange, µs (median of {args.rounds} rounds of {args.exchanges:,})\n")
    print("| exchange | requests.Session | LeanSession | urllib3 pool alone | LeanSession / requests |")
    print("|---|---:|---:|---:|---:|")
    for method in ("GET", "POST"):
        figures: dict[str, list[float]] = {"requests.Session": [], "LeanSession": [],
                                           "urllib3 pool alone": []}
        for _ in range(args.rounds):
            figures["requests.Session"].append(_cpu_us(through(plain, method), args.exchanges))
            figures["LeanSession"].append(_cpu_us(through(lean, method), args.exchanges))
            figures["urllib3 pool alone"].append(_cpu_us(floor(method), args.exchanges))
        med = {name: statistics.median(values) for name, values in figures.items()}
        print(f"| {method} | {med['requests.Session']:.0f} | {med['LeanSession']:.0f} | "
              f"{med['urllib3 pool alone']:.0f} | {med['LeanSession'] / med['requests.Session']:.2f} |")
    server.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
