"""docs/grafana: the checked-in dashboard is what docs/grafana/dashboard.py builds with
Grafana's SDK, and every panel's PromQL finds data in a real Prometheus (Debian's
``prometheus``) scraping a running callwatch: web and worker as the Procfile runs them,
the Twilio simulator, a webhook receiver, sample calls (an incident's storm, a warning, an
Insights 500 that is retried) and an active silence."""

from __future__ import annotations

import json
import math
import os
import runpy
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.processes import Process
from devtools.redis_server import RedisServer, free_port
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.defaults import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from devtools.simulator.sender import play_call
from devtools.simulator.server import SimulatorServer
from devtools.standins import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "docs" / "grafana" / "dashboard.py"
DASHBOARD = ROOT / "docs" / "grafana" / "callwatch.json"
#: What Grafana puts for $__rate_interval; the whole run fits in it.
RATE_WINDOW = "5m"
#: Calls that fail alike: with a storm of 3 the third opens an incident.
STORM_CALLS = 3
MAX_ANSWER_BYTES = 1_000_000
VENV_BIN = Path(sys.executable).parent


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def query_panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel.get("targets")]


def test_checked_in_dashboard_is_what_the_generator_builds() -> None:
    """docs/grafana/callwatch.json is, byte for byte, what dashboard.py builds with the SDK
    (edit the script, then run it, never the JSON)."""
    render = runpy.run_path(str(GENERATOR))["render"]
    assert DASHBOARD.read_text(encoding="utf-8") == render()


def test_dashboard_answers_the_operators_questions() -> None:
    """A described panel on the chosen Prometheus for each question: calls, alerts by severity
    and category, deliveries by sink and outcome, call end to delivered, queues, overdue
    analyses, workers, incidents, silences, Insights requests and errors, slow sinks and
    configuration drift."""
    board = dashboard()
    assert [v["type"] for v in board["templating"]["list"]] == ["datasource"]
    exprs: list[str] = []
    for panel in query_panels():
        assert panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            exprs.append(target["expr"])
    text = "\n".join(exprs)
    for needle in ("callwatch_callbacks_total", "by (severity, category)", "by (sink, outcome)",
                   "callwatch_alert_latency_seconds_bucket", "callwatch_queue_jobs",
                   "callwatch_analysis_overdue_seconds", "callwatch_workers",
                   "callwatch_incidents_open", "callwatch_silences_active",
                   "callwatch_insights_requests_total{status!~", "callwatch_sink_slow",
                   "callwatch_config_info", "callwatch_alerts_silenced_total"):
        assert needle in text, needle
    # Deployment-wide values are never added up over the scraped processes.
    assert "sum(rate(" not in text and "sum by (" not in text.replace("sum by (le", "")


# --- against a real Prometheus --------------------------------------------------------

def _get(url: str, **params: str) -> Any:
    response = requests.get(url, params=params, timeout=5, allow_redirects=False, stream=True)
    body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    assert len(body) <= MAX_ANSWER_BYTES, url
    return response.status_code, body


def _ready(url: str) -> bool:
    try:
        return _get(url)[0] == 200
    except requests.RequestException:
        return False


def _wait(predicate: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.3)


class Prometheus:
    """Debian's prometheus scraping ``target`` every second, its data in ``folder``."""

    def __init__(self, binary: str, target: str, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = folder / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: callwatch\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n", encoding="utf-8")
        self.process = Process([binary, f"--config.file={config}",
                                f"--storage.tsdb.path={folder / 'data'}",
                                f"--web.listen-address=127.0.0.1:{self.port}",
                                "--log.level=warn"], {}).start()

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, body = _get(self.url + "/api/v1/query", query=expr)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"{expr}: {answer}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0


def _process_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "ALERT_", "SLACK_"))}
    return {**env, **extra, "PATH": f"{VENV_BIN}{os.pathsep}{env['PATH']}"}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A Prometheus that has scraped callwatch through a few calls' whole journey."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not on PATH (Debian/Ubuntu: apt-get install -y prometheus; "
                    ".ci/run installs it)")
    folder = tmp_path_factory.mktemp("prometheus")
    with ExitStack() as stack:
        simulator = stack.enter_context(SimulatorServer(account_sid=DEV_ACCOUNT_SID,
                                                        auth_token=DEV_AUTH_TOKEN))
        receiver = stack.enter_context(WebhookReceiver(WEBHOOK_SECRET))
        redis_server = stack.enter_context(RedisServer())
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        routing = (
            "sinks:\n"
            f"  hooks: {{type: webhook, url: '{receiver.url}', secret: '{WEBHOOK_SECRET}'}}\n"
            "default: [hooks]\n"
            f"storm: {{calls: {STORM_CALLS}, within_s: 300, group_by: [issue], "
            "update_every_s: 10, resolve_after_s: 600}\n")
        env = _process_env({
            "REDIS_URL": redis_server.url, "TWILIO_ACCOUNT_SID": DEV_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEV_AUTH_TOKEN, "TWILIO_INSIGHTS_BASE_URL": simulator.url,
            "PUBLIC_BASE_URL": base, "ANALYSIS_DELAY_SECONDS": "1",
            "ANALYSIS_RECHECK_SECONDS": "1,2", "CALLWATCH_CONFIG": routing,
            "WEB_CONCURRENCY": "1", "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}"})
        web = Process([str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", "workers.wsgi:app"],
                      env).start()
        stack.callback(web.close)
        worker = Process([sys.executable, "-m", "workers.worker", "--concurrency", "2"],
                         env).start()
        stack.callback(worker.close)
        web.wait_for(lambda: _ready(base + "/readyz"), timeout=30)
        server = Prometheus(binary, f"127.0.0.1:{port}", folder)
        stack.callback(server.process.close)
        server.process.wait_for(lambda: _ready(server.url + "/-/ready"), timeout=30)
        # A scrape before any call, so that rates see the counters rise from their zeros.
        _wait(lambda: server.value("max(callwatch_metrics_redis_up)") == 1,
              "Prometheus's first scrape", timeout=30)

        silence = subprocess.run(
            [str(VENV_BIN / "callwatch"), "silence", "add", "country_code=ZZ", "--for", "1h",
             "--comment", "dashboard test"], env=env, capture_output=True, text=True,
            timeout=30, check=False)
        assert silence.returncode == 0, silence.stdout + silence.stderr
        # The storm's calls and a warning alert; a clean call; a clean call whose first
        # Insights request fails with 500 and is retried.
        calls = [("sdk-error", {})] * STORM_CALLS + [("warning-uncleared", {}), ("clean", {}),
                                                      ("server-errors", {"failures": 1})]
        # One call first: a histogram's series appear with its first observation, and its
        # rate needs them scraped before the others arrive.
        play_call(simulator.url, base, DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, *calls[0])
        _wait(lambda: server.value("max(callwatch_delivery_duration_seconds_count)") >= 1
              and server.value("max(callwatch_insights_request_duration_seconds_count)") >= 1,
              "the first call's delivery and Insights request in Prometheus", timeout=60)
        for scenario, options in calls[1:]:
            play_call(simulator.url, base, DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, scenario, options)
        alerting = STORM_CALLS + 1  # the warning too; the clean and the retried call have none
        worker.wait_for(lambda: sum(1 for d in receiver.accepted()
                                    if d.body.get("type") == "call.alert") >= alerting,
                        timeout=60)
        # Until Prometheus has scraped every delivery (web flushes its counters every 5 s).
        delivered = len(receiver.accepted())
        _wait(lambda: server.value('max(callwatch_deliveries_total{outcome="delivered"})')
              >= delivered and server.value('max(callwatch_callbacks_total{outcome="accepted"})')
              >= len(calls), "Prometheus to scrape every delivery and callback", timeout=30)
        # Then a few more scrapes: a series born with the last calls (a first 500 from
        # Insights, an incident's event) needs two samples for rate() to show it.
        scrapes = "max(count_over_time(callwatch_metrics_redis_up[1h]))"
        seen = server.value(scrapes)
        _wait(lambda: server.value(scrapes) >= seen + 3, "three more scrapes", timeout=30)
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("panel", query_panels(), ids=lambda panel: panel["title"])
def test_panel_finds_data_in_prometheus(prometheus: Prometheus, panel: dict[str, Any]) -> None:
    """Each of the panel's queries, with Grafana's rate window, returns at least one series
    with a number (not NaN) from a Prometheus scraping a callwatch that handled calls."""
    for target in panel["targets"]:
        expr = target["expr"].replace("$__rate_interval", RATE_WINDOW)
        result = prometheus.query(expr)
        values = [float(series["value"][1]) for series in result]
        assert any(not math.isnan(value) for value in values), \
            f"no data for {target['expr']!r} ({panel['title']}): {result}"
