"""The Redis connections a Heroku formation holds, counted with CLIENT LIST on a real
Redis: the default formation (1 web with gunicorn's default WEB_CONCURRENCY, 1 worker as
the Procfile starts it on a dyno), a second worker dyno and a one-off fit Heroku
Key-Value Store mini's limit of 20 (the README's "Redis connection budget")."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
import redis as redis_lib
import requests

from devtools.processes import Process, settings_env, worker
from devtools.redis_server import RedisServer, free_port
from devtools.web_client import callback_params, sign
from service.calls import CALLBACK_PATH

#: Heroku Key-Value Store mini's connection limit (Heroku's technical characterization).
MINI_LIMIT = 20
#: The budget the README documents: a web dyno, the worker dyno whose process runs RQ's
#: scheduler, another worker dyno, a one-off.
WEB_DYNO, WORKER_DYNO, SECOND_WORKER_DYNO, ONE_OFF = 4, 7, 6, 1
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "workers.wsgi:app"]
PUBLIC = "https://callwatch.test"


def connections(client: redis_lib.Redis, seconds: float = 7.0) -> int:
    """The most clients (other than ``client``) seen over ``seconds``: longer than a
    worker's maintenance interval, when it retries the scheduler's lock."""
    own, most = client.client_id(), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        most = max(most, sum(1 for c in client.client_list() if int(c["id"]) != own))
        time.sleep(0.1)
    return most


def traffic(port: int, calls: range) -> None:
    """Callbacks (each an analysis the worker runs), readiness checks and scrapes."""
    base = f"http://127.0.0.1:{port}"
    for n in calls:
        params = callback_params(f"CA{n:032x}")
        answer = requests.post(base + CALLBACK_PATH, data=params, timeout=10,
                               headers={"X-Twilio-Signature": sign(PUBLIC + CALLBACK_PATH, params)})
        assert answer.status_code == 204
        assert requests.get(base + "/metrics", timeout=10).status_code == 200
        assert requests.get(base + "/readyz", timeout=10).status_code == 200


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


@pytest.mark.slow
def test_default_formation_a_second_worker_and_a_one_off_fit_the_mini_plan(
        processes: list[Process]) -> None:
    """Web (2 gunicorn workers) holds <= 4, a worker dyno <= 7 (2 worker processes of 3,
    and RQ's scheduler) and a second one <= 6, so web + 2 workers + a one-off stay within
    20. (Totals are compared: the web's pool grows to its bound only under traffic.)"""
    with RedisServer() as server:
        client = redis_lib.Redis.from_url(server.url)
        env = settings_env(server.url, PUBLIC_BASE_URL=PUBLIC, ANALYSIS_DELAY_SECONDS="0",
                           ANALYSIS_RECHECK_SECONDS="1")
        env.pop("WEB_CONCURRENCY", None)
        port = free_port()
        web = Process(GUNICORN, {**env, "PORT": str(port)}).start()
        processes.append(web)
        web.wait_for(lambda: _ready(port), timeout=30)
        traffic(port, range(0, 20))
        web_only = connections(client)

        first = worker({**env, "DYNO": "worker.1"}).start()
        processes.append(first)
        first.wait_for(lambda: len(first.events("worker_listening")) >= 2, timeout=30)
        traffic(port, range(20, 40))
        formation = connections(client)

        second = worker({**env, "DYNO": "worker.2"}).start()
        processes.append(second)
        second.wait_for(lambda: len(second.events("worker_listening")) >= 2, timeout=30)
        traffic(port, range(40, 60))
        with_second = connections(client)
        client.close()
    assert len(first.events("worker_starting")) == 2  # 2 worker processes on a dyno
    assert web_only <= WEB_DYNO, web_only
    assert formation <= WEB_DYNO + WORKER_DYNO, (web_only, formation)
    assert with_second <= WEB_DYNO + WORKER_DYNO + SECOND_WORKER_DYNO, (formation, with_second)
    assert with_second + ONE_OFF <= MINI_LIMIT, with_second


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
