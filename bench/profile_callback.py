"""Profile: the callback route in process, without gunicorn or a network client.

Run from the project root::

    .venv/bin/python bench/profile_callback.py [--count 4000] [--profile] [--top 30]

Builds the app as ``workers.wsgi`` does (JSON logs, to ``/dev/null`` here) against a
private Redis and calls its WSGI entry point directly with signed terminal callbacks,
each with a new CallSid, so each one is admitted: the accepted-and-written path.
``--gc`` also counts the garbage collections (and their pauses) during the measured
requests; ``--freeze`` first moves what start-up built out of the collector's reach, as
``workers.wsgi`` does. Prints the CPU per request (user + system of this process, Redis's own excluded) as
the minimum and median over chunks of 100 requests: the minimum is the figure least
disturbed by other work on a shared machine. ``--profile`` runs the same requests
under cProfile instead and prints the functions with the most time of their own and
the most cumulative time (cProfile inflates small functions; read the shares).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import logging
import os
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.ingest import ACCOUNT_SID, AUTH_TOKEN, signed_callbacks  # noqa: E402
from devtools.redis_server import RedisServer  # noqa: E402
from service.intake import INTAKE_KEY  # noqa: E402
from service.logs import configure_logging  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.web import create_app  # noqa: E402

BASE_URL = "http://127.0.0.1:8000"
CHUNK = 100
WARMUP = 200


def environs(count: int) -> Iterator[dict[str, Any]]:
    """WSGI environments of ``count`` signed callbacks, as gunicorn would pass them."""
    for request in signed_callbacks(BASE_URL, count, 1):
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": request.path,
            "RAW_URI": request.path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_LENGTH": str(len(request.body)), "wsgi.input": io.BytesIO(request.body),
        }
        for name, value in request.headers:
            key = name.upper().replace("-", "_")
            environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
        yield environ


class _GcPauses:
    """Garbage collections by generation: how many, their total and longest pause."""

    def __init__(self) -> None:
        self._began = 0.0
        self.by_generation: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.by_generation[info["generation"]].append(time.perf_counter() - self._began)

    def report(self, frozen: bool) -> str:
        parts = [f"gen{g}: {len(p)} x, {sum(p) * 1e3:.1f} ms, max {max(p, default=0) * 1e3:.1f} ms"
                 for g, p in self.by_generation.items()]
        return (f"garbage collections ({'frozen' if frozen else 'not frozen'}, "
                f"{len(gc.get_objects())} tracked objects): " + "; ".join(parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=4000, help="measured callbacks")
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--gc", action="store_true",
                        help="also count garbage collections and their pauses")
    parser.add_argument("--freeze", action="store_true",
                        help="gc.freeze() once the app is built, as workers.wsgi does")
    args = parser.parse_args(argv)
    with RedisServer() as server, open(os.devnull, "w") as devnull:
        env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
               "REDIS_URL": server.url, "PUBLIC_BASE_URL": BASE_URL, "LOG_FORMAT": "json"}
        settings = Settings.from_env(env)
        configure_logging(settings.log_level, settings.log_format)
        logging.getLogger().handlers[0].setStream(devnull)  # type: ignore[attr-defined]
        wsgi = create_app(settings).wsgi_app
        prepared = list(environs(WARMUP + args.count))
        if args.freeze:
            gc.freeze()
        pauses = _GcPauses() if args.gc else None

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            if not status.startswith("204"):
                raise RuntimeError(f"callback answered {status}")

        def run(batch: list[dict[str, Any]]) -> None:
            for environ in batch:
                for _ in wsgi(environ, start_response):
                    pass

        run(prepared[:WARMUP])
        measured = prepared[WARMUP:]
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            run(measured)
            profile.disable()
            stats = pstats.Stats(profile)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
        else:
            per_request = []
            for start in range(0, len(measured) - CHUNK + 1, CHUNK):
                began = time.process_time()
                run(measured[start:start + CHUNK])
                per_request.append((time.process_time() - began) / CHUNK * 1e6)
            print(f"CPU per accepted callback, in process: min {min(per_request):.0f} µs, "
                  f"median {statistics.median(per_request):.0f} µs "
                  f"({len(per_request)} chunks of {CHUNK})")
        if pauses is not None:
            print(pauses.report(args.freeze))
        admitted = int(redis.Redis.from_url(server.url).zcard(INTAKE_KEY))
        if admitted != len(prepared):
            print(f"problem: {admitted} calls admitted for {len(prepared)} callbacks",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
