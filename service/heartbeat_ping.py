"""``HEARTBEAT_URL``: an outside dead man's switch, pinged while analyses run on time.

callwatch's own rules (``CallwatchNoWorkers``) need a Prometheus that is itself alive and
scraping; an outside service (healthchecks.io, Cronitor, Dead Man's Snitch) that expects a
GET every minute notices when the whole deployment, or its Redis, is gone. One process of
the deployment pings per ``PING_EVERY_S`` (a Redis key taken with ``SET NX``), and only
while the oldest due analysis is less than ``ON_TIME_S`` overdue: workers that run but
do not keep up stop the pings too. The GET follows no redirect, reads at most
``MAX_ANSWER_BYTES`` and ends by ``DEADLINE_S``; its URL (which carries the check's
token) is never logged, only its host.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import redis as redis_lib
import requests
import structlog

from service import keys
from service.http import AnswerTooLarge, AnswerTooSlow, headers_by, host_of, read_capped, user_agent

#: One ping per this many seconds, deployment-wide.
PING_EVERY_S = 60
#: Analyses at most this overdue count as on time (the ``CallwatchAnalysisOverdue`` bound).
ON_TIME_S = 300.0
#: The whole GET, connect to last byte.
DEADLINE_S = 10.0
MAX_ANSWER_BYTES = 4096

log = structlog.get_logger(__name__)


def ping_if_due(redis: redis_lib.Redis, session: requests.Session, url: str, *,
                overdue_s: Callable[[], float]) -> bool | None:
    """GET ``url`` if this process has the turn for this minute and analyses are on time.

    ``overdue_s`` (the oldest due analysis's lateness) is read only by the process that won
    the turn, so the other processes' offers cost one ``SET NX`` each. Returns True
    (pinged, 2xx), False (pinged, the service answered otherwise or not at all), or None
    (not this process's turn, or analyses are late: no ping)."""
    if not redis.set(keys.HEARTBEAT_PING, "1", nx=True, ex=PING_EVERY_S):
        return None
    overdue = overdue_s()
    if overdue > ON_TIME_S:
        log.warning("heartbeat_withheld", overdue_s=round(overdue))
        return None
    deadline = time.monotonic() + DEADLINE_S
    try:
        # The headers too (a peer may drip them): the whole GET ends by DEADLINE_S.
        response = headers_by(DEADLINE_S, lambda: session.get(
            url, timeout=(3.05, 5.0), allow_redirects=False, stream=True,
            headers={"User-Agent": user_agent()}), session)
        with response:
            with contextlib.suppress(AnswerTooLarge):  # the status is the answer
                read_capped(response, MAX_ANSWER_BYTES, deadline=deadline)
            ok = 200 <= response.status_code < 300
            if not ok:
                log.warning("heartbeat_refused", host=host_of(url), status=response.status_code)
            return ok
    except (requests.RequestException, OSError, AnswerTooSlow) as err:
        log.warning("heartbeat_unreachable", host=host_of(url), error=type(err).__name__)
        return False
