"""gunicorn worker classes for the web process (named by ``gunicorn.conf.py``).

``GeventWorker`` is the default: each connection is a greenlet, so a client that is
slow to send its request, or sends nothing at all, costs a little memory and no
thread. gunicorn's gevent worker bounds the reading of each request head by
``keepalive`` seconds; this one also bounds each whole request (its body included) by
``timeout`` seconds, and gives the other connections a turn before each request.
``ThreadWorker`` (``WEB_WORKER_CLASS=gthread``) is for deployments behind a proxy that
buffers whole requests.

Both answer the requests gunicorn refuses before the app sees them (a malformed
request line, header or chunked framing; a request line or header section over the
limits) with callwatch's JSON error body instead of gunicorn's HTML page. These are
the only changes to gunicorn's behaviour, each in one overridden method:
``Worker.handle_error``, which gunicorn calls with the parser's exception (anything
that is not the client's fault is left to gunicorn), and the gevent worker's
``handle_request``, which takes a turn and runs the request under a ``gevent.Timeout``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import gevent
from gunicorn import util
from gunicorn.http import errors
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from service.web.gevent_turn import take_turn

#: gunicorn's refusals that are the server's own fault: left to gunicorn (500).
_NOT_THE_CLIENTS = (errors.ConfigurationProblem, errors.InvalidResponseHeader,
                    errors.InvalidResponseHeaderName)
#: (status, reason, message) by the parser's exception; the message never echoes input.
_ANSWERS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (errors.LimitRequestLine, 414, "URI Too Long", "the request line is too long"),
    (errors.LimitRequestHeaders, 431, "Request Header Fields Too Large",
     "the request's headers are too many or too large"),
    (errors.UnsupportedTransferCoding, 501, "Not Implemented",
     "the request's Transfer-Encoding is not supported"),
    (errors.ExpectationFailed, 417, "Expectation Failed", "the Expect header is not supported"),
    (errors.ForbiddenProxyRequest, 403, "Forbidden", "the proxy header is not accepted"),
    (errors.InvalidRequestLine, 400, "Bad Request", "the request line is malformed"),
    (errors.InvalidRequestMethod, 400, "Bad Request", "the request method is malformed"),
    (errors.InvalidHTTPVersion, 400, "Bad Request", "the HTTP version is not supported"),
    (errors.InvalidChunkSize, 400, "Bad Request", "the chunked body is malformed"),
    (errors.ChunkMissingTerminator, 400, "Bad Request", "the chunked body is malformed"),
    (errors.InvalidChunkExtension, 400, "Bad Request", "the chunked body is malformed"),
    (errors.ParseException, 400, "Bad Request", "the request's headers are malformed"),
)


def refusal(exc: BaseException) -> tuple[int, str, str] | None:
    """The JSON answer for a request gunicorn's parser refused, or None if not the client's fault."""
    if isinstance(exc, _NOT_THE_CLIENTS):
        return None
    for kind, status, reason, message in _ANSWERS:
        if isinstance(exc, kind):
            return status, reason, message
    return None


def json_error(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer carrying ``{"error": "invalid_request", "message": ...}``."""
    error = "invalid_signature" if status == 403 else "invalid_request"
    body = json.dumps({"error": error, "message": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class _JsonErrors:
    """``handle_error`` answering the client's malformed requests in JSON."""

    cfg: Any
    log: Any

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        answer = refusal(exc)
        if answer is None:
            super().handle_error(req, client, addr, exc)  # type: ignore[misc]
            return
        status, reason, message = answer
        addr = addr or ("", -1)  # a unix socket
        # The same warning gunicorn writes; the log guards mask the query it may quote.
        self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
        if req is None and isinstance(exc, (errors.InvalidHeader, errors.InvalidHeaderName)):
            req = getattr(exc, "req", None)
        payload = json_error(status, reason, message)
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
            response = Response(req, client, self.cfg)
            response.status = f"{status} {reason}"
            response.response_length = len(payload)
            self.log.access(response, req, environ, timedelta(0))
        try:
            util.write_nonblock(client, payload)
        except Exception:
            self.log.debug("Failed to send error message.")


class RequestTooSlow(BaseException):
    """A request still being read or answered at its deadline. A ``BaseException``, so the
    app's own ``except Exception`` blocks do not swallow it on its way out."""


class GeventWorker(_JsonErrors, _GeventWorker):
    """gunicorn's gevent worker, with JSON refusals, a turn for every connection, and a
    deadline per request.

    A turn: gunicorn reads a keep-alive connection's next request without yielding when it
    is already buffered, so a client that sends back to back (or pipelines) kept the worker
    to itself while every other connection's requests waited, seconds under load (see
    bench/README.md). Each request now starts with a turn (``service.web.gevent_turn``): the
    loop first serves whatever is ready, so connections with a request waiting take turns.

    The deadline: a request whose body drips in, or that is otherwise still running (its
    turn included), after gunicorn's ``timeout`` seconds is cut off and its connection
    closed. The app's own waits are far shorter (Redis: 2 s), so in practice only a slow
    client's body meets it. A request whose greenlet is killed (a shutdown past its grace
    period) before gunicorn's handler runs is closed unanswered, as gunicorn closes one it
    kills mid-way, rather than answered with gunicorn's HTML 500."""

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        try:
            with gevent.Timeout(self.cfg.timeout, RequestTooSlow):
                take_turn()
                return super().handle_request(listener_name, req, sock, addr)
        except RequestTooSlow:
            self.log.warning("Request from ip=%s cut off after %s s (timeout)",
                             addr[0] if addr else "?", self.cfg.timeout)
            raise StopIteration() from None
        except gevent.GreenletExit:  # only during the turn: gunicorn's handler catches its own
            raise StopIteration() from None


class ThreadWorker(_JsonErrors, _ThreadWorker):
    """gunicorn's gthread worker, with JSON refusals."""
