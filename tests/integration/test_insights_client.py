"""InsightsClient against real HTTP servers on loopback: the Twilio simulator and scripted ones."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs
from werkzeug.wrappers import Request, Response

from devtools.background_server import BackgroundServer
from devtools.hostile_peers import HostilePeer, drip, drip_head, huge
from devtools.simulator.defaults import DEV_API_KEY_SECRET, DEV_API_KEY_SID
from devtools.simulator.server import SimulatorServer
from devtools.simulator.state import SimulatorState
from service.errors import (
    EventsNotReady,
    InsightsAccessDenied,
    InsightsBadResponse,
    InsightsUnavailable,
    InvalidInput,
)
from service.insights.calls_api import CallsClient
from service.insights.client import InsightsClient
from service.insights.credentials import InsightsCredentials
from service.insights.summary import SummaryClient
from service.settings import Settings

CALL = "CA" + "ab" * 16
NOW = datetime(2026, 11, 27, 10, 15, tzinfo=UTC)


class Sleeps(list[float]):
    """A ``sleep`` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(sim: SimulatorServer, **kwargs: Any) -> InsightsClient:
    kwargs.setdefault("sleep", Sleeps())
    return InsightsClient(sim.url, (sim.account_sid, sim.auth_token), **kwargs)


class Scripted:
    """A loopback server answering from a script of (status, headers, body); records requests."""

    def __init__(self, script: list[tuple[int, dict[str, str], Any]] | None = None) -> None:
        self.script = list(script or [])
        self.seen: list[dict[str, Any]] = []
        self._http = BackgroundServer(self._app, name="scripted").start()
        self.url = self._http.url

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.seen.append({"path": request.path, "query": request.query_string.decode(),
                          "authorization": request.headers.get("Authorization")})
        status, headers, body = self.script.pop(0) if self.script else (200, {}, {"events": []})
        text = body if isinstance(body, str) else json.dumps(body)
        response = Response(text, status=status, headers=headers, mimetype="application/json")
        return response(environ, start_response)

    def close(self) -> None:
        self._http.stop()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    """A scripted server; tests fill ``.script``."""
    server = Scripted()
    yield server
    server.close()


def page(events: list[dict[str, Any]], next_url: str | None) -> dict[str, Any]:
    return {"meta": {"page": 0, "page_size": 1000, "key": "events", "next_page_url": next_url,
                     "previous_page_url": None, "first_page_url": "x", "url": "x"},
            "events": events}


def test_pages_through_2500_events_with_three_requests(simulator: SimulatorServer) -> None:
    """2,500 events at PageSize=1000 take exactly three requests and arrive in order."""
    sid = simulator.add_call("many-events", count=2500)
    events = client_for(simulator).fetch_events(sid, ["sdk_edge"])
    assert len(events) == 2500
    assert {e.edge for e in events} == {"sdk_edge"}
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    log = simulator.requests
    assert [r["status"] for r in log] == [200, 200, 200]
    assert [r["params"].get("PageToken") for r in log] == [None, "PT1000", "PT2000"]
    assert all(r["params"]["PageSize"] == "1000" and r["params"]["Edge"] == "sdk_edge" for r in log)


def test_edges_are_fetched_in_order_and_concatenated(simulator: SimulatorServer) -> None:
    """Each requested edge is one Edge= request, results concatenated in the order given."""
    sid = simulator.add_call("sdk-error")
    events = client_for(simulator).fetch_events(sid, ["client_edge", "sdk_edge"])
    edges = [e.edge for e in events]
    assert edges == sorted(edges, key=lambda e: e != "client_edge")
    assert {"client_edge", "sdk_edge"} == set(edges)
    assert [e.error_code for e in events if e.error_code] == [31005]
    assert [r["params"]["Edge"] for r in simulator.requests] == ["client_edge", "sdk_edge"]


def test_429_with_retry_after_is_absorbed(simulator: SimulatorServer) -> None:
    """Two 429s with Retry-After: 1 are waited out (1 s each) and the events come back."""
    sid = simulator.add_call("rate-limited", failures=2, retry_after=1, events="sdk-error")
    sleeps = Sleeps()
    with capture_logs() as logs:
        events = client_for(simulator, sleep=sleeps).fetch_events(sid, ["sdk_edge"])
    assert any(e.error_code == 31005 for e in events)
    assert sleeps == [1.0, 1.0]
    assert [r["status"] for r in simulator.requests] == [429, 429, 200]
    retries = [entry for entry in logs if entry["event"] == "insights_retry"]
    assert [(r["status"], r["attempt"], r["wait_s"]) for r in retries] == [
        (429, 1, 1.0), (429, 2, 1.0)]
    assert simulator.auth_token not in repr(logs)


def test_500s_are_absorbed_with_exponential_backoff(simulator: SimulatorServer) -> None:
    """Two 500s are retried after jittered exponential waits within their bounds."""
    sid = simulator.add_call("server-errors", failures=2)
    sleeps = Sleeps()
    events = client_for(simulator, sleep=sleeps, backoff_s=0.5).fetch_events(sid, ["sdk_edge"])
    assert events
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0
    assert [r["status"] for r in simulator.requests] == [500, 500, 200]


def test_retries_exhausted_raise_insights_unavailable(simulator: SimulatorServer) -> None:
    """Failures beyond max_attempts raise InsightsUnavailable from the HTTP error."""
    sid = simulator.add_call("server-errors", failures=5, status=503)
    statuses: list[int | None] = []
    client = client_for(simulator, max_attempts=3,
                        on_request=lambda status, seconds: statuses.append(status))
    with pytest.raises(InsightsUnavailable) as caught:
        client.fetch_events(sid, ["sdk_edge"])
    assert caught.value.status == 503
    assert caught.value.retry_after is None
    assert isinstance(caught.value.__cause__, requests.HTTPError)
    assert statuses == [503, 503, 503]
    assert len(simulator.requests) == 3


def test_long_retry_after_is_handed_back_not_slept(simulator: SimulatorServer) -> None:
    """A Retry-After above max_inline_wait_s raises at once with retry_after, never sleeping."""
    sid = simulator.add_call("rate-limited", failures=1, retry_after=120)
    sleeps = Sleeps()
    with pytest.raises(InsightsUnavailable) as caught:
        client_for(simulator, sleep=sleeps, max_inline_wait_s=5).fetch_events(sid, ["sdk_edge"])
    assert caught.value.retry_after == 120
    assert caught.value.status == 429
    assert sleeps == []
    assert len(simulator.requests) == 1


def test_retry_after_as_http_date(scripted: Scripted) -> None:
    """Retry-After as an HTTP date is read relative to the injected clock."""
    when = format_datetime(NOW + timedelta(seconds=3), usegmt=True)
    scripted.script = [(429, {"Retry-After": when}, {"code": 20429, "message": "Too Many"}),
                       (200, {}, page([{"name": "x"}], None))]
    sleeps = Sleeps()
    client = InsightsClient(scripted.url, ("AC1", "t"), sleep=sleeps, clock=lambda: NOW)
    assert [e.name for e in client.fetch_events(CALL, ["sdk_edge"])] == ["x"]
    assert sleeps == [3.0]


def test_read_timeouts_are_retried_then_unavailable() -> None:
    """Answers slower than the read timeout count as failures and end in InsightsUnavailable."""
    with SimulatorServer() as sim:
        sid = sim.add_call("slow", delay_s=0.5)
        statuses: list[int | None] = []
        client = client_for(sim, timeout=(1.0, 0.05), max_attempts=2,
                            on_request=lambda status, seconds: statuses.append(status))
        with pytest.raises(InsightsUnavailable) as caught:
            client.fetch_events(sid, ["sdk_edge"])
    assert isinstance(caught.value.__cause__, requests.Timeout)
    assert statuses == [None, None]


def test_connection_refused_is_unavailable() -> None:
    """Nothing listening on the base URL ends in InsightsUnavailable from ConnectionError."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    client = InsightsClient(f"http://127.0.0.1:{port}", ("AC1", "t"), sleep=sleeps, max_attempts=2)
    with pytest.raises(InsightsUnavailable) as caught:
        client.fetch_events(CALL, ["sdk_edge"])
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert len(sleeps) == 1


@pytest.mark.parametrize("error_format", ["legacy", "rfc9457"])
def test_advanced_features_off(simulator: SimulatorServer, error_format: str) -> None:
    """401 with code 17007 (either body shape) is InsightsAccessDenied advanced_features_off."""
    sid = simulator.add_call("advanced-features-off", error_format=error_format)
    with pytest.raises(InsightsAccessDenied) as caught:
        client_for(simulator).fetch_events(sid, ["sdk_edge"])
    assert caught.value.reason == "advanced_features_off"
    assert caught.value.status == 401
    message = str(caught.value)
    assert "17007" in message and "Voice Insights Advanced Features not enabled" in message
    assert "enable" in message.lower()
    assert len(simulator.requests) == 1


def test_advanced_features_code_17000(simulator: SimulatorServer) -> None:
    """Code 17000 (forbidden to access data) is also advanced_features_off."""
    sid = simulator.add_call("advanced-features-off", code=17000)
    with pytest.raises(InsightsAccessDenied) as caught:
        client_for(simulator).fetch_events(sid, ["sdk_edge"])
    assert caught.value.reason == "advanced_features_off"


def test_wrong_credentials(simulator: SimulatorServer) -> None:
    """A wrong token is bad_credentials, naming the variables to check, never the token."""
    sid = simulator.add_call("clean")
    client = InsightsClient(simulator.url, (simulator.account_sid, "wrong-token"))
    with pytest.raises(InsightsAccessDenied) as caught:
        client.fetch_events(sid, ["sdk_edge"])
    assert caught.value.reason == "bad_credentials"
    assert "TWILIO_AUTH_TOKEN" in str(caught.value) and "20003" in str(caught.value)
    assert "wrong-token" not in str(caught.value)
    assert isinstance(caught.value.__cause__, requests.HTTPError)


@pytest.mark.parametrize("error_format", ["legacy", "rfc9457"])
def test_403_problem_body_is_read(scripted: Scripted, error_format: str) -> None:
    """A 403 RFC 9457 or legacy body's code and message reach the exception message."""
    body = ({"type": "https://www.twilio.com/docs/errors/20003", "title": "Forbidden",
             "status": 403, "code": 20003, "detail": "Key lacks permission"}
            if error_format == "rfc9457" else
            {"code": 20003, "message": "Key lacks permission", "more_info": "x", "status": 403})
    scripted.script = [(403, {}, body)]
    with pytest.raises(InsightsAccessDenied) as caught:
        InsightsClient(scripted.url, ("SK1", "s")).fetch_events(CALL, ["sdk_edge"])
    assert caught.value.reason == "bad_credentials"
    assert "20003" in str(caught.value) and "Key lacks permission" in str(caught.value)


def test_api_key_auth(simulator: SimulatorServer) -> None:
    """An API key SID and secret authenticate like the account token."""
    sid = simulator.add_call("mic-denied")
    client = InsightsClient(simulator.url, (DEV_API_KEY_SID, DEV_API_KEY_SECRET))
    events = client.fetch_events(sid, ["sdk_edge"])
    assert {e.error_code for e in events if e.error_code} == {31401}
    assert [r["auth"] for r in simulator.requests] == ["api_key"]


def test_unknown_call_is_events_not_ready(simulator: SimulatorServer) -> None:
    """404 (an unknown CallSid) is EventsNotReady."""
    with pytest.raises(EventsNotReady) as caught:
        client_for(simulator).fetch_events(CALL, ["sdk_edge"])
    assert "20404" in str(caught.value)


def test_late_events_are_not_ready_then_ready() -> None:
    """A late-events call answers 404 until ready_after_s has passed on the simulator's clock."""
    now = [100.0]
    state = SimulatorState(clock=lambda: now[0])
    with SimulatorServer(state=state) as sim:
        sid = sim.add_call("late-events", ready_after_s=90, events="warning-uncleared")
        client = client_for(sim)
        with pytest.raises(EventsNotReady):
            client.fetch_events(sid, ["sdk_edge"])
        now[0] += 90
        events = client.fetch_events(sid, ["sdk_edge"])
    assert any(e.name == "low-mos" for e in events)


def test_invalid_call_sid_is_refused_before_any_request(simulator: SimulatorServer) -> None:
    """A malformed CallSid raises InvalidInput and sends nothing."""
    with pytest.raises(InvalidInput):
        client_for(simulator).fetch_events("CA123/../../Accounts", ["sdk_edge"])
    assert simulator.requests == []


def test_offsite_next_page_is_refused(scripted: Scripted) -> None:
    """A next_page_url on another port is refused (offsite_page); the other host sees nothing."""
    elsewhere = Scripted()
    try:
        offsite = f"{elsewhere.url}/v1/Voice/{CALL}/Events"
        scripted.script = [(200, {}, page([{"name": "a"}], offsite))]
        client = InsightsClient(scripted.url, ("AC1", "secret-token"))
        with pytest.raises(InsightsBadResponse) as caught:
            client.fetch_events(CALL, ["sdk_edge"])
        assert caught.value.reason == "offsite_page"
        assert elsewhere.seen == []
    finally:
        elsewhere.close()


@pytest.mark.parametrize("next_url", ["https://{host}/v1/x", "http://localhost.evil.example/v1/x"])
def test_offsite_scheme_or_host_is_refused(scripted: Scripted, next_url: str) -> None:
    """A different scheme or host is as off-site as a different port."""
    host = scripted.url.removeprefix("http://")
    scripted.script = [(200, {}, page([], next_url.format(host=host)))]
    with pytest.raises(InsightsBadResponse) as caught:
        InsightsClient(scripted.url, ("AC1", "t")).fetch_events(CALL, ["sdk_edge"])
    assert caught.value.reason == "offsite_page"
    assert len(scripted.seen) == 1


def test_relative_next_page_is_joined_to_the_base(scripted: Scripted) -> None:
    """A relative next_page_url is followed on the base URL, with credentials."""
    scripted.script = [
        (200, {}, page([{"name": "a"}], f"/v1/Voice/{CALL}/Events?PageSize=1000&PageToken=PT1")),
        (200, {}, page([{"name": "b"}], None)),
    ]
    events = InsightsClient(scripted.url, ("AC1", "t")).fetch_events(CALL, ["sdk_edge"])
    assert [e.name for e in events] == ["a", "b"]
    assert scripted.seen[1]["query"] == "PageSize=1000&PageToken=PT1"
    assert all(s["authorization"] for s in scripted.seen)


def test_a_later_page_that_vanishes_is_retried_not_read_as_no_events(scripted: Scripted) -> None:
    """A 404 on page 2 (an expired page token) must not turn the pages already read into
    "no events yet": the fetch is unavailable, so the analysis is tried again later."""
    scripted.script = [
        (200, {}, page([{"name": "a"}], f"/v1/Voice/{CALL}/Events?PageSize=1000&PageToken=PT1")),
        (404, {}, {"code": 20404, "message": "The requested resource was not found"}),
    ]
    with pytest.raises(InsightsUnavailable) as caught:
        InsightsClient(scripted.url, ("AC1", "t")).fetch_events(CALL, ["sdk_edge"])
    assert caught.value.status == 404


def test_a_body_cut_short_is_retried_then_unavailable() -> None:
    """A 200 whose body ends before its Content-Length is a transport failure: retried, then
    InsightsUnavailable (the analysis is rescheduled), never a raw requests exception."""
    body = b'{"meta": {"next_page_url": null}, "events": []}'
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(body) + 100))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def serve() -> None:
            for _ in range(2):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(head + body)  # and close: 100 bytes short

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        sleeps = Sleeps()
        client = InsightsClient(f"http://127.0.0.1:{port}", ("AC1", "t"), sleep=sleeps,
                                max_attempts=2)
        with pytest.raises(InsightsUnavailable) as caught:
            client.fetch_events(CALL, ["sdk_edge"])
        server.join(timeout=5)
    assert isinstance(caught.value.__cause__, requests.RequestException)
    assert len(sleeps) == 1


def test_a_fetch_that_outlasts_its_budget_is_handed_back(scripted: Scripted) -> None:
    """Paging through a slow Insights stops once the fetch budget is spent: the analysis is
    rescheduled ("unavailable") instead of running into the job timeout as a crash."""
    scripted.script = [
        (200, {}, page([{"name": "a"}], f"/v1/Voice/{CALL}/Events?PageToken=PT1")),
        (200, {}, page([{"name": "b"}], f"/v1/Voice/{CALL}/Events?PageToken=PT2")),
        (200, {}, page([{"name": "c"}], None)),
    ]
    # Every look at the clock is 25 s later. (At 50 s the request itself was sent with
    # timeouts of 1 ms, the budget's floor: on a loaded machine it could fail to connect
    # before the server saw it.)
    ticks = iter(range(0, 1000, 25))
    client = InsightsClient(scripted.url, ("AC1", "t"), fetch_budget_s=120,
                            monotonic=lambda: float(next(ticks)))
    with pytest.raises(InsightsUnavailable, match="took over 120 s"):
        client.fetch_events(CALL, ["sdk_edge"])
    assert 1 <= len(scripted.seen) <= 2


def test_records_are_read_from_meta_key(scripted: Scripted) -> None:
    """Records come from payload[meta.key], as twilio-python reads them."""
    scripted.script = [(200, {}, {"meta": {"key": "items", "next_page_url": None},
                                  "items": [{"name": "k"}]})]
    events = InsightsClient(scripted.url, ("AC1", "t")).fetch_events(CALL, ["sdk_edge"])
    assert [e.name for e in events] == ["k"]


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, "<html>not json</html>", "invalid_json"),
        (200, [1, 2], "invalid_payload"),
        (200, {"meta": {"next_page_url": None}}, "invalid_payload"),
        (400, {"code": 20001, "message": "Invalid PageSize"}, "request_rejected"),
        (302, "", "unexpected_status"),
    ],
)
def test_unreadable_answers_are_bad_responses(scripted: Scripted, status: int, body: Any,
                                              reason: str) -> None:
    """Non-JSON, wrong shapes, other 4xx and redirects are InsightsBadResponse with a reason."""
    scripted.script = [(status, {"Location": "http://elsewhere.example/"} if status == 302 else {},
                        body)]
    with pytest.raises(InsightsBadResponse) as caught:
        InsightsClient(scripted.url, ("AC1", "t")).fetch_events(CALL, ["sdk_edge"])
    assert caught.value.reason == reason
    assert len(scripted.seen) == 1


def test_repeated_next_page_is_a_loop(scripted: Scripted) -> None:
    """A server that keeps pointing at the same page is stopped, not followed forever."""
    same = f"{scripted.url}/v1/Voice/{CALL}/Events?PageToken=PT1"
    scripted.script = [(200, {}, page([], same)), (200, {}, page([], same))]
    with pytest.raises(InsightsBadResponse) as caught:
        InsightsClient(scripted.url, ("AC1", "t")).fetch_events(CALL, ["sdk_edge"])
    assert caught.value.reason == "page_loop"


def test_a_dripping_page_ends_the_fetch_at_its_deadline() -> None:
    """A page that drips a byte at a time ends the whole fetch at its deadline, as
    "unavailable" (rescheduled), although every single read is well inside the read timeout."""
    ticks = iter(range(10_000))  # each look at the clock is a second later
    with HostilePeer(drip(0.01, prefix=b'{"meta": {}, "events": [', announced=100_000,
                          for_s=20)) as insights:
        client = InsightsClient(insights.url, ("AC1", "t"), fetch_budget_s=30, sleep=Sleeps(),
                                monotonic=lambda: float(next(ticks)))
        with pytest.raises(InsightsUnavailable, match="took over 30 s"):
            client.fetch_events(CALL, ["sdk_edge"])
    assert len(insights.requests) == 1


@pytest.mark.parametrize("read", ["events", "calls", "summary"])
def test_dripping_headers_end_every_read_at_its_fetch_deadline(read: str) -> None:
    """Headers that never end, a byte at a time within the read timeout: the Events, Calls
    API and Call Summary reads end at the fetch budget as "unavailable" (rescheduled) while
    the peer is still dripping, not at RQ's job timeout."""
    every_s, for_s = 0.2, 20.0
    with HostilePeer(drip_head(every_s, for_s=for_s)) as peer:
        client = InsightsClient(peer.url, ("AC" + "0" * 32, "t"), fetch_budget_s=1.0,
                                sleep=Sleeps())
        with pytest.raises(InsightsUnavailable, match="took over 1 s"):
            if read == "events":
                client.fetch_events(CALL, ["sdk_edge"])
            elif read == "calls":
                CallsClient(client).child_legs("AC" + "0" * 32, CALL)
            else:
                SummaryClient(client).fetch(CALL)
        assert 0 < peer.sent < for_s / every_s / 2
    assert len(peer.requests) == 1


def test_timeouts_never_outlast_the_fetch_deadline() -> None:
    """With 2 s of the fetch left, a page that sends nothing is given up after about 2 s, not
    after the 10 s read timeout: the result is "unavailable" and no second attempt is made."""
    with HostilePeer(drip(60, announced=100)) as insights:
        client = InsightsClient(insights.url, ("AC1", "t"), fetch_budget_s=2, sleep=Sleeps())
        with pytest.raises(InsightsUnavailable, match="took over 2 s"):
            client.fetch_events(CALL, ["sdk_edge"])
    assert len(insights.requests) == 1


def test_a_huge_page_is_refused_without_being_read() -> None:
    """A 100 MB page is refused as page_too_large (permanent: asking again brings the same page)
    after reading at most the 8 MiB cap."""
    with HostilePeer(huge(100 * 1024 * 1024)) as insights, pytest.raises(InsightsBadResponse) as caught:
        InsightsClient(insights.url, ("AC1", "t")).fetch_events(CALL, ["sdk_edge"])
    assert caught.value.reason == "page_too_large"
    assert insights.sent < 64 * 1024 * 1024


def _rotation_settings(sim: SimulatorServer, **env: str) -> Settings:
    return Settings.from_env({"TWILIO_ACCOUNT_SID": sim.account_sid,
                              "TWILIO_AUTH_TOKEN": "old-token-already-replaced", **env})


def test_token_rotation_falls_back_to_the_secondary_once() -> None:
    """With the secondary token promoted in Twilio (the primary now gets 401), Insights is
    read with TWILIO_AUTH_TOKEN_SECONDARY: the switch is logged once per process, and later
    fetches go straight to the secondary."""
    with SimulatorServer(auth_token="new-token-promoted") as sim:
        settings = _rotation_settings(sim, TWILIO_AUTH_TOKEN_SECONDARY="new-token-promoted")
        credentials = InsightsCredentials.from_settings(settings)  # one per worker process
        sids = [sim.add_call("mic-denied") for _ in range(3)]
        with capture_logs() as logs:
            for sid in sids:  # one client per job, as the worker builds them
                events = InsightsClient(sim.url, credentials).fetch_events(sid, ["sdk_edge"])
                assert {e.error_code for e in events if e.error_code} == {31401}
        assert [r["status"] for r in sim.requests] == [401, 200, 200, 200]
    [fell_back] = [e for e in logs if e["event"] == "insights_auth_fell_back"]
    assert fell_back["using"] == "TWILIO_AUTH_TOKEN_SECONDARY"
    assert "new-token-promoted" not in repr(logs) and "old-token" not in repr(logs)


def test_no_fallback_without_a_secondary_and_none_with_an_api_key() -> None:
    """Without a secondary token a 401 is bad_credentials at once; with an API key the tokens
    are never tried."""
    with SimulatorServer(auth_token="new-token-promoted") as sim:
        sid = sim.add_call("clean")
        for env in ({}, {"TWILIO_API_KEY_SID": "SK" + "0" * 32, "TWILIO_API_KEY_SECRET": "nope",
                         "TWILIO_AUTH_TOKEN_SECONDARY": "new-token-promoted"}):
            credentials = InsightsCredentials.from_settings(_rotation_settings(sim, **env))
            with pytest.raises(InsightsAccessDenied) as caught:
                InsightsClient(sim.url, credentials).fetch_events(sid, ["sdk_edge"])
            assert caught.value.reason == "bad_credentials"
        assert [r["status"] for r in sim.requests] == [401, 401]
