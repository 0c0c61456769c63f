"""A turn: let gevent's event loop serve whatever is ready before going on, for a bounded time.

Used by the web process under gevent before each request
(``service.web.gunicorn_workers``), so connections with a request waiting take turns
instead of one keep-alive client holding the worker. ``gevent.idle()`` returns once the loop has nothing else
pending; a loop that never goes quiet (steady I/O faster than a pass through the loop)
would hold it for ever, so a turn ends after :data:`TURN_MAX_S` whatever happens.
``gevent.sleep(0)`` is not a turn: it resumes the greenlet from gevent's callback queue,
often before the loop has polled the other sockets.
"""

from __future__ import annotations

import gevent

#: The longest a turn waits for the loop to go quiet.
TURN_MAX_S = 0.05


def take_turn() -> None:
    """Wait until the event loop has served what is ready, at most :data:`TURN_MAX_S`."""
    with gevent.Timeout(TURN_MAX_S, False):
        gevent.idle()
