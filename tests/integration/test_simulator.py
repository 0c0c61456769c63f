"""The Twilio simulator over HTTP: control API, scenarios, faults, callback sender, runner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.request_validator import RequestValidator
from werkzeug.wrappers import Request, Response

from devtools.background_server import BackgroundServer
from devtools.simulator import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from devtools.simulator.scenarios import ScenarioInput, build_call
from devtools.simulator.sender import callback_params, play_call, send_status_callback, sign
from devtools.simulator.server import SimulatorServer
from service.insights.client import InsightsClient

ROOT = Path(__file__).resolve().parents[2]
SID = "CA" + "12" * 16
STARTED = "2026-11-27T10:14:18Z"


def events_of(sim: SimulatorServer, sid: str) -> list[Any]:
    client = InsightsClient(sim.url, (sim.account_sid, sim.auth_token), sleep=lambda s: None)
    return client.fetch_events(sid, ["sdk_edge"])


def alerts(sim: SimulatorServer, scenario: str, **options: Any) -> list[tuple[Any, ...]]:
    """(group, name, level, error_code) of the WARNING and ERROR events of a new call."""
    sid = sim.add_call(scenario, **options)
    return [(e.group, e.name, e.level, e.error_code) for e in events_of(sim, sid)
            if e.level in ("WARNING", "ERROR")]


# --- control API ----------------------------------------------------------------------

def test_register_a_call_over_http(simulator: SimulatorServer) -> None:
    """POST /_sim/calls answers 201 with the call's SID (the given one or a new one)."""
    given = requests.post(f"{simulator.url}/_sim/calls", timeout=5,
                          json={"scenario": "sdk-error", "call_sid": SID})
    assert given.status_code == 201
    assert given.json() == {"call_sid": SID, "scenario": "sdk-error"}
    fresh = requests.post(f"{simulator.url}/_sim/calls", json={"scenario": "clean"}, timeout=5)
    assert fresh.status_code == 201 and fresh.json()["call_sid"] != SID
    assert [e.error_code for e in events_of(simulator, SID) if e.error_code] == [31005]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"scenario": "nope"}, "unknown scenario"),
        ({}, "scenario is required"),
        ({"scenario": "clean", "call_sid": "CA1"}, "call_sid"),
        ({"scenario": "clean", "options": {"duratoin_s": 3}}, "unknown option"),
        ({"scenario": "many-events", "options": {"count": "lots"}}, "count"),
        ({"scenario": "clean", "options": [1]}, "options"),
        ({"scenario": "late-events", "options": {"events": "late-events"}}, "events"),
    ],
)
def test_bad_registrations_are_400(simulator: SimulatorServer, body: dict[str, Any],
                                   fragment: str) -> None:
    """Unknown scenarios, bad SIDs and unknown or ill-typed options answer 400 and say why."""
    response = requests.post(f"{simulator.url}/_sim/calls", json=body, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert fragment in response.json()["message"]


def test_request_log_and_reset(simulator: SimulatorServer) -> None:
    """GET /_sim/requests lists each API request with who asked (a SID, never a token);
    POST /_sim/reset forgets calls and requests."""
    sid = simulator.add_call("clean")
    events_of(simulator, sid)
    log = requests.get(f"{simulator.url}/_sim/requests", timeout=5).json()["requests"]
    assert log == [{"api": "events", "username": simulator.account_sid, "method": "GET",
                    "path": f"/v1/Voice/{sid}/Events",
                    "query": "Edge=sdk_edge&PageSize=1000",
                    "params": {"Edge": "sdk_edge", "PageSize": "1000"},
                    "status": 200, "auth": "account", "call_sid": sid}]
    assert requests.post(f"{simulator.url}/_sim/reset", timeout=5).status_code == 204
    assert simulator.requests == []
    assert simulator.state.lookup(sid) is None


def test_global_faults_are_seeded_and_apply_to_every_call(simulator: SimulatorServer) -> None:
    """POST /_sim/faults makes Events requests fail at the given rates, reproducibly by seed."""
    sid = simulator.add_call("clean")
    url = f"{simulator.url}/v1/Voice/{sid}/Events"
    auth = (simulator.account_sid, simulator.auth_token)

    def run() -> list[int]:
        answer = requests.post(f"{simulator.url}/_sim/faults", timeout=5,
                               json={"rate_429": 0.3, "rate_500": 0.3, "seed": 7})
        assert answer.json() == {"rate_429": 0.3, "rate_500": 0.3, "seed": 7}
        return [requests.get(url, auth=auth, timeout=5).status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert {429, 500, 200} == set(first)
    simulator.set_faults(rate_429=1.0)
    throttled = requests.get(url, auth=auth, timeout=5)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.json()["code"] == 20429
    requests.post(f"{simulator.url}/_sim/reset", timeout=5)
    simulator.add_call("clean", call_sid=sid)
    assert requests.get(url, auth=auth, timeout=5).status_code == 200


@pytest.mark.parametrize("body", [{"rate_429": 2}, {"rate_500": "x"},
                                  {"rate_429": 0.6, "rate_500": 0.6}, {"chaos": 1}])
def test_bad_faults_are_400(simulator: SimulatorServer, body: dict[str, Any]) -> None:
    """Rates outside 0..1, summing above 1, or unknown fields answer 400."""
    response = requests.post(f"{simulator.url}/_sim/faults", json=body, timeout=5)
    assert response.status_code == 400


# --- scenarios ------------------------------------------------------------------------

def test_scenarios_carry_their_problems(simulator: SimulatorServer) -> None:
    """Each problem scenario's WARNING/ERROR events are the ones its name promises."""
    assert alerts(simulator, "clean") == []
    assert alerts(simulator, "sdk-error") == [("connection", "error", "ERROR", 31005)]
    ice = alerts(simulator, "ice-failure")
    assert ("ice-connection-state", "failed", "ERROR", None) in ice
    assert ("connection", "error", "ERROR", 53405) in ice
    assert alerts(simulator, "mic-denied") == [("get-user-media", "denied", "ERROR", None),
                                               ("connection", "error", "ERROR", 31401)]
    assert alerts(simulator, "warning-uncleared") == [
        ("network-quality-warning-raised", "low-mos", "WARNING", None)]


def sdk_story(sim: SimulatorServer, scenario: str) -> list[tuple[Any, ...]]:
    """(group/name, level, code) of a new call's connection, ICE-state and warning events."""
    sid = sim.add_call(scenario)
    return [(f"{e.group}/{e.name}", e.level, e.error_code) for e in events_of(sim, sid)
            if e.group in ("connection", "ice-connection-state")
            or "warning" in (e.group or "")]


def classified(sim: SimulatorServer, scenario: str) -> list[tuple[Any, ...]]:
    """(key, severity, cleared) of the issues callwatch finds in a new call."""
    from service.analysis.classifier import AlertPolicy, classify
    from service.calls import Call

    sid = sim.add_call(scenario)
    call = Call(call_sid=sid, account_sid=sim.account_sid, status="completed")
    issues = classify(call, events_of(sim, sid), AlertPolicy())
    return [(i.key, i.severity, i.cleared) for i in issues]


def test_recovered_media_drop_speaks_like_the_sdk(simulator: SimulatorServer) -> None:
    """ice-reconnected: the WARNING 53405 comes before reconnecting, then reconnected; it is a
    cleared warning for callwatch."""
    story = sdk_story(simulator, "ice-reconnected")
    at = {entry: index for index, entry in enumerate(story)}
    warning = ("connection/error", "WARNING", 53405)
    assert at[warning] < at[("connection/reconnecting", "INFO", None)] < at[
        ("connection/reconnected", "INFO", None)]
    assert not any(level == "ERROR" for _, level, _ in story)
    assert ("sdk_edge/connection/error/53405", "warning", True) in classified(
        simulator, "ice-reconnected")


def test_failed_media_ends_with_the_sdk_giving_up(simulator: SimulatorServer) -> None:
    """ice-failure: reconnection starts at WARNING, restarts fail, the call disconnects and
    the 53405 ERROR follows; no reconnected. callwatch calls it an error."""
    story = sdk_story(simulator, "ice-failure")
    assert story.index(("connection/error", "WARNING", 53405)) < story.index(
        ("connection/reconnecting", "INFO", None))
    assert story[-2:] == [("connection/disconnected-by-local", "INFO", None),
                          ("connection/error", "ERROR", 53405)]
    assert all(name != "connection/reconnected" for name, _, _ in story)
    assert ("sdk_edge/connection/error/53405", "error", False) in classified(
        simulator, "ice-failure")


def test_busy_and_declined_are_outcomes(simulator: SimulatorServer) -> None:
    """busy and declined publish the precise codes, which make no issue by default."""
    assert alerts(simulator, "busy") == [("connection", "error", "ERROR", 31486)]
    assert alerts(simulator, "declined") == [("connection", "error", "ERROR", 31603)]
    assert classified(simulator, "busy") == classified(simulator, "declined") == []


def test_warning_figures_sit_at_sdk_edge_metric(simulator: SimulatorServer) -> None:
    """Quality warnings carry sdk_edge.metric {threshold, values}, errors sdk_edge.error."""
    sid = simulator.add_call("warnings-cleared")
    auth = (simulator.account_sid, simulator.auth_token)
    page = requests.get(f"{simulator.url}/v1/Voice/{sid}/Events", auth=auth,
                        params={"PageSize": 1000}, timeout=5).json()
    raised = [e["sdk_edge"] for e in page["events"]
              if e["group"] == "network-quality-warning-raised"]
    assert raised and all(set(sdk["metric"]) == {"threshold", "values"} for sdk in raised)
    assert all("data" not in sdk for sdk in raised)
    assert {sdk["metric"]["threshold"] for sdk in raised} == {400, 30}


def test_warnings_cleared_pairs_every_warning(simulator: SimulatorServer) -> None:
    """warnings-cleared raises high-rtt twice and high-jitter once, each followed by its clear."""
    sid = simulator.add_call("warnings-cleared")
    events = events_of(simulator, sid)
    warnings = [(e.group, e.name) for e in events if "warning" in (e.group or "")]
    assert warnings == [
        ("network-quality-warning-raised", "high-rtt"),
        ("network-quality-warning-cleared", "high-rtt"),
        ("network-quality-warning-raised", "high-rtt"),
        ("network-quality-warning-cleared", "high-rtt"),
        ("network-quality-warning-raised", "high-jitter"),
        ("network-quality-warning-cleared", "high-jitter"),
    ]


def test_events_look_like_a_real_sdk_call(simulator: SimulatorServer) -> None:
    """Events carry client metadata, INFO/DEBUG noise, and times within the call's duration."""
    sid = simulator.add_call("clean", duration_s=30, started_at=STARTED)
    events = events_of(simulator, sid)
    names = {f"{e.group}/{e.name}" for e in events}
    assert {"connection/outgoing", "ice-connection-state/checking",
            "ice-connection-state/connected", "get-user-media/succeeded", "settings/codec",
            "connection/disconnected-by-local"} <= names
    assert all(e.client and e.client.sdk_type and e.client.country_code for e in events)
    start = events[0].timestamp
    assert start is not None and start.isoformat() == "2026-11-27T10:14:18+00:00"
    assert all(e.timestamp and 0 <= (e.timestamp - start).total_seconds() <= 30 for e in events)
    assert {e.level for e in events} == {"INFO", "DEBUG"}


def test_many_events_count_option(simulator: SimulatorServer) -> None:
    """many-events yields exactly `count` SDK events (10,000 here), some of them warnings."""
    sid = simulator.add_call("many-events", count=10_000)
    events = events_of(simulator, sid)
    assert len(events) == 10_000
    assert any(e.level == "WARNING" for e in events)
    assert len(simulator.requests) == 10


def test_scenarios_are_deterministic() -> None:
    """The same call SID, time and options always give the same events; seed varies them."""
    from datetime import UTC, datetime

    now = datetime(2026, 11, 27, 10, 15, tzinfo=UTC)
    one = build_call("warnings-cleared", ScenarioInput(SID, DEV_ACCOUNT_SID, now))
    two = build_call("warnings-cleared", ScenarioInput(SID, DEV_ACCOUNT_SID, now))
    assert one == two
    profiles = {build_call("clean", ScenarioInput(SID, DEV_ACCOUNT_SID, now, {"seed": seed}))
                .events[0]["sdk_edge"]["metadata"]["client_name"] for seed in range(12)}
    assert len(profiles) > 1


def test_fault_scenarios_serve_the_chosen_events(simulator: SimulatorServer) -> None:
    """A fault scenario's `events` option picks what it serves once the fault has passed."""
    assert alerts(simulator, "server-errors", failures=1, events="mic-denied")[0][:2] == (
        "get-user-media", "denied")
    assert [r["status"] for r in simulator.requests] == [500, 200]


def test_slow_scenario_delays_no_sooner_than_asked(simulator: SimulatorServer) -> None:
    """Each answer of a slow call takes at least delay_s."""
    sid = simulator.add_call("slow", delay_s=0.2)
    started = time.monotonic()
    events_of(simulator, sid)
    assert time.monotonic() - started >= 0.2


# --- callback sender ------------------------------------------------------------------

class Receiver:
    """A stand-in callwatch endpoint that checks X-Twilio-Signature like callwatch does."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self._http = BackgroundServer(self._app, name="callback-receiver").start()
        self.url = self._http.url

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        url = self.url + request.path
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        params = request.form if request.method == "POST" else {}
        valid = RequestValidator(DEV_AUTH_TOKEN).validate(
            url, params, request.headers.get("X-Twilio-Signature", ""))
        self.got.append({"method": request.method, "path": request.path, "valid": valid,
                         "params": dict(request.form if request.method == "POST"
                                        else request.args)})
        return Response(status=204 if valid else 403)(environ, start_response)

    def close(self) -> None:
        self._http.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback endpoint that verifies Twilio signatures."""
    server = Receiver()
    yield server
    server.close()


def test_sign_matches_twilio_test_vector() -> None:
    """sign() reproduces twilio-python's published test vector."""
    params = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212", "Caller": "+14158675309"}
    assert sign("https://mycompany.com/myapp.php?foo=1&bar=2", params, "12345") == (
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_callback_params_are_realistic() -> None:
    """callback_params has Twilio's fields; CallDuration only for completed; extras override."""
    completed = callback_params(SID, DEV_ACCOUNT_SID, "completed", SequenceNumber=3)
    assert completed["From"] == "client:alice" and completed["To"] == "+14155550123"
    assert completed["Direction"] == "outbound-api" and completed["ApiVersion"] == "2010-04-01"
    assert completed["CallbackSource"] == "call-progress-events"
    assert (completed["CallDuration"], completed["SequenceNumber"]) == ("42", "3")
    assert parsedate_to_datetime(completed["Timestamp"]).utcoffset() is not None
    ringing = callback_params(SID, DEV_ACCOUNT_SID, "ringing", To=None)
    assert "CallDuration" not in ringing and "To" not in ringing


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_send_status_callback_is_signed(receiver: Receiver, method: str) -> None:
    """A POSTed or GET callback carries a signature the validator accepts."""
    params = callback_params(SID, DEV_ACCOUNT_SID, "completed")
    response = send_status_callback(f"{receiver.url}/twilio/status-callback?tenant=a b",
                                    params, DEV_AUTH_TOKEN, method=method)
    assert response.status_code == 204
    assert receiver.got[0]["valid"] and receiver.got[0]["method"] == method
    assert receiver.got[0]["params"]["CallSid"] == SID


def test_play_call_registers_then_sends_each_status(simulator: SimulatorServer,
                                                    receiver: Receiver) -> None:
    """play_call registers the scenario and posts signed callbacks for each status in order."""
    sid = play_call(simulator.url, receiver.url, DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, "sdk-error",
                    {"duration_s": 17})
    assert [g["params"]["CallStatus"] for g in receiver.got] == [
        "initiated", "ringing", "in-progress", "completed"]
    assert [g["params"]["SequenceNumber"] for g in receiver.got] == ["0", "1", "2", "3"]
    assert all(g["valid"] and g["path"] == "/twilio/status-callback" for g in receiver.got)
    assert receiver.got[-1]["params"]["CallDuration"] == "17"
    assert {g["params"]["CallSid"] for g in receiver.got} == {sid}
    assert [e.error_code for e in events_of(simulator, sid) if e.error_code] == [31005]


def test_play_call_callback_options(simulator: SimulatorServer, receiver: Receiver) -> None:
    """sip_response_code, direction, from and to shape the callbacks, not the scenario."""
    play_call(simulator.url, f"{receiver.url}/twilio/status-callback", DEV_ACCOUNT_SID,
              DEV_AUTH_TOKEN, "clean",
              {"sip_response_code": 404, "direction": "inbound", "from": "+14155550100"},
              statuses=("initiated", "failed"))
    first, last = (g["params"] for g in receiver.got)
    assert "SipResponseCode" not in first and last["SipResponseCode"] == "404"
    assert last["CallStatus"] == "failed" and "CallDuration" not in last
    assert (last["Direction"], last["From"]) == ("inbound", "+14155550100")
    assert all(g["valid"] for g in receiver.got)


def test_play_call_fails_loudly_when_refused(simulator: SimulatorServer,
                                             receiver: Receiver) -> None:
    """A callback refused by callwatch (wrong token here) raises HTTPError."""
    with pytest.raises(requests.HTTPError):
        play_call(simulator.url, receiver.url, DEV_ACCOUNT_SID, "other-token", "clean",
                  statuses=("completed",))


# --- the standalone runner ------------------------------------------------------------

def test_python_dash_m_runs_a_simulator() -> None:
    """`python -m devtools.simulator --port N` serves the Events API with the given account."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    account, token = "AC" + "9" * 32, "cli-token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.simulator", "--port", str(port),
         "--account-sid", account, "--auth-token", token],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                created = requests.post(f"{base}/_sim/calls", json={"scenario": "mic-denied"},
                                        timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "simulator did not start"
                time.sleep(0.05)
        sid = created.json()["call_sid"]
        events = InsightsClient(base, (account, token)).fetch_events(sid, ["sdk_edge"])
        assert {e.error_code for e in events if e.error_code} == {31401}
        assert {e.account_sid for e in events} == {account}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
