"""A WSGI app on a loopback port, served by werkzeug from a daemon thread.

The one way callwatch runs an HTTP server inside a process: the Twilio simulator,
the Slack and webhook stand-ins, and tests that need a real socket all use it.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No access-log line per request (the servers keep their own records)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class BackgroundServer:
    """``start()`` serves ``app`` on ``host:port`` (0 picks a free port) until ``stop()``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 name: str = "wsgi-server", access_log: bool = False) -> None:
        self._app = app
        self._host, self._port = host, port
        self._name = name
        self._handler = WSGIRequestHandler if access_log else QuietHandler
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> Self:
        if self._server is None:
            self._server = make_server(self._host, self._port, self._app, threaded=True,
                                       request_handler=self._handler)
            # A short poll interval keeps stop() quick (shutdown waits for one poll).
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name=self._name, daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (standalone use)."""
        self._server = make_server(self._host, self._port, self._app, threaded=True,
                                   request_handler=self._handler)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_until_interrupted(doc: str, default_port: int, argv: Sequence[str] | None,
                            start: Callable[[int], Any], banner: Callable[[Any], str]) -> int:
    """A stand-in's ``main``: ``--port``, start it echoing, print ``banner``, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args(argv)
    with start(args.port) as server:
        print(banner(server), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0
