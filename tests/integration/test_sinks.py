"""Sinks against the stand-ins over real HTTP on loopback: what is delivered, retried, refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from structlog.testing import capture_logs

from devtools.hostile_peers import HostilePeer, drip, fixed, huge
from devtools.sample_alerts import WEBHOOK_SECRET, sample_alert
from devtools.standins import SlackStandIn, WebhookReceiver
from service.delivery.sinks import LogSink, Sinks, SlackSink, UnknownSink, WebhookSink
from service.delivery.sinks.webhook import legacy_webhook_sink_id
from service.errors import ConfigError, DeliveryRejected, DeliveryRetryable
from service.http_session import http_session
from service.settings import Settings


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """One HTTP session per test, closed afterwards."""
    with http_session({}) as s:
        yield s


def _webhook(receiver: WebhookReceiver, session: requests.Session, **kwargs: object) -> WebhookSink:
    return WebhookSink(receiver.url, WEBHOOK_SECRET, session=session, **kwargs)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_delivered_and_verified(webhook_receiver: WebhookReceiver,
                                        session: requests.Session) -> None:
    """One POST, verified by the reference library, carrying the envelope and the alert id."""
    alert = sample_alert()
    _webhook(webhook_receiver, session).send(alert)
    [delivery] = webhook_receiver.deliveries
    assert delivery.verified and delivery.status == 200
    assert delivery.webhook_id == alert.alert_id
    assert delivery.body == alert.to_envelope()
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["user-agent"].startswith("callwatch/")
    assert webhook_receiver.unique_ids() == {alert.alert_id}


def test_webhook_500_is_retryable(webhook_receiver: WebhookReceiver,
                                  session: requests.Session) -> None:
    """A 5xx answer raises DeliveryRetryable with its status and no wait of its own."""
    webhook_receiver.script([(500, "oops")])
    with pytest.raises(DeliveryRetryable) as caught:
        _webhook(webhook_receiver, session).send(sample_alert())
    assert caught.value.status == 500 and caught.value.retry_after is None


def test_webhook_429_retry_after_seconds(webhook_receiver: WebhookReceiver,
                                         session: requests.Session) -> None:
    """A 429's Retry-After in seconds becomes retry_after."""
    webhook_receiver.script([(429, "slow down", {"Retry-After": "37"})])
    with pytest.raises(DeliveryRetryable) as caught:
        _webhook(webhook_receiver, session).send(sample_alert())
    assert caught.value.status == 429 and caught.value.retry_after == 37.0


def test_webhook_503_retry_after_http_date(webhook_receiver: WebhookReceiver,
                                           session: requests.Session) -> None:
    """A Retry-After HTTP-date is measured from the sink's clock."""
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    webhook_receiver.script([(503, "maintenance", {"Retry-After": later})])
    with pytest.raises(DeliveryRetryable) as caught:
        _webhook(webhook_receiver, session, clock=lambda: now).send(sample_alert())
    assert caught.value.retry_after == 90.0 and caught.value.status == 503


def test_webhook_408_is_retryable(webhook_receiver: WebhookReceiver,
                                  session: requests.Session) -> None:
    """408 Request Timeout is retryable, unlike other 4xx."""
    webhook_receiver.script([(408, "timeout")])
    with pytest.raises(DeliveryRetryable):
        _webhook(webhook_receiver, session).send(sample_alert())


def test_webhook_410_is_endpoint_gone(webhook_receiver: WebhookReceiver,
                                      session: requests.Session) -> None:
    """410 is permanent with reason endpoint_gone and a message saying so."""
    webhook_receiver.script([(410, "gone")])
    with pytest.raises(DeliveryRejected) as caught:
        _webhook(webhook_receiver, session).send(sample_alert())
    assert caught.value.reason == "endpoint_gone" and caught.value.status == 410
    assert "gone" in str(caught.value)


def test_webhook_other_4xx_is_rejected(webhook_receiver: WebhookReceiver,
                                       session: requests.Session) -> None:
    """Other 4xx answers are permanent with reason http_<status>."""
    webhook_receiver.script([(422, "unprocessable")])
    with pytest.raises(DeliveryRejected) as caught:
        _webhook(webhook_receiver, session).send(sample_alert())
    assert caught.value.reason == "http_422"


def test_webhook_redirect_not_followed(webhook_receiver: WebhookReceiver,
                                       session: requests.Session) -> None:
    """A 3xx is a permanent rejection and the Location is never requested."""
    elsewhere = webhook_receiver.url_for("elsewhere")
    webhook_receiver.script([(307, "", {"Location": elsewhere})])
    with pytest.raises(DeliveryRejected) as caught:
        _webhook(webhook_receiver, session).send(sample_alert())
    assert caught.value.reason == "redirect"
    assert [d.name for d in webhook_receiver.deliveries] == ["callwatch"]


def test_webhook_timeout_is_retryable(session: requests.Session) -> None:
    """A receiver slower than the read timeout gives DeliveryRetryable."""
    with WebhookReceiver(WEBHOOK_SECRET, hold_s=2.0) as slow, \
            pytest.raises(DeliveryRetryable) as caught:
        _webhook(slow, session, timeout=(1.0, 0.2)).send(sample_alert())
    assert "Timeout" in str(caught.value)


def test_webhook_unreachable_is_retryable_and_hides_the_url(session: requests.Session) -> None:
    """Connection refused is retryable; the error names the host, never the path or query."""
    url = f"http://127.0.0.1:{_free_port()}/hooks/private-path?token=s3cret"
    with pytest.raises(DeliveryRetryable) as caught:
        WebhookSink(url, WEBHOOK_SECRET, session=session).send(sample_alert())
    assert "127.0.0.1" in str(caught.value)
    assert "s3cret" not in str(caught.value) and "private-path" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_plain_http_to_other_hosts_refused_at_construction() -> None:
    """http:// to a non-loopback host is refused before anything is sent."""
    with pytest.raises(ConfigError) as caught:
        WebhookSink("http://hooks.example.com/in", WEBHOOK_SECRET)
    assert caught.value.variable == "ALERT_WEBHOOK_URLS"
    with pytest.raises(ConfigError) as caught:
        SlackSink("http://hooks.slack.com/services/T/B/X")
    assert caught.value.variable == "SLACK_WEBHOOK_URL"


def test_slack_ok(slack_receiver: SlackStandIn) -> None:
    """200 ok delivers one valid message with the alert's text fallback."""
    alert = sample_alert()
    SlackSink(slack_receiver.url).send(alert)
    [message] = slack_receiver.accepted()
    assert alert.call.call_sid in message.payload["text"]
    assert message.payload["blocks"][0]["type"] == "header"


@pytest.mark.parametrize(("status", "reason"), [
    (404, "no_service"), (410, "channel_is_archived"), (403, "invalid_token"),
    (400, "invalid_payload"),
])
def test_slack_permanent_errors_carry_slack_reason(slack_receiver: SlackStandIn, status: int,
                                                   reason: str) -> None:
    """Slack's 400/403/404/410 are permanent, with Slack's body as the reason."""
    slack_receiver.script([(status, reason)])
    with pytest.raises(DeliveryRejected) as caught:
        SlackSink(slack_receiver.url).send(sample_alert())
    assert caught.value.reason == reason and caught.value.status == status


def test_slack_429_honours_retry_after(slack_receiver: SlackStandIn) -> None:
    """Slack's 429 with Retry-After: 2 gives retry_after 2."""
    slack_receiver.script([(429, "rate_limited", {"Retry-After": "2"})])
    with pytest.raises(DeliveryRetryable) as caught:
        SlackSink(slack_receiver.url).send(sample_alert())
    assert caught.value.retry_after == 2.0 and caught.value.status == 429


@pytest.mark.parametrize("content_type", ["text/html; charset=x-no-such-charset",
                                          "text/html; charset=ascii"])
def test_slack_answer_that_cannot_be_decoded_is_retryable(slack_receiver: SlackStandIn,
                                                          content_type: str) -> None:
    """A proxy's error page in an unknown charset, or bytes its charset cannot decode, is a
    retryable failure (DELIVERY_RETRY_SECONDS applies), not a crash of the job."""
    slack_receiver.script([(503, "Service indisponible \u2014 r\u00e9essayez",
                            {"Content-Type": content_type})])
    with pytest.raises(DeliveryRetryable):
        SlackSink(slack_receiver.url).send(sample_alert())


@pytest.mark.parametrize(("header", "expected"), [
    ("31536000", 3600.0),                                   # a year: capped at an hour
    ("9" * 400, 3600.0),                                    # beyond a float: capped too
    ("Mon, 01 Jan 999999999999999999999 00:00:00 GMT", None),  # unreadable: own schedule
])
def test_slack_absurd_retry_after_cannot_stall_the_sink(slack_receiver: SlackStandIn,
                                                        header: str,
                                                        expected: float | None) -> None:
    """One absurd Retry-After must not pause every Slack alert for a year or crash the job:
    it is capped at an hour, or ignored when it cannot be read."""
    slack_receiver.script([(429, "rate_limited", {"Retry-After": header})])
    with pytest.raises(DeliveryRetryable) as caught:
        SlackSink(slack_receiver.url).send(sample_alert())
    assert caught.value.retry_after == expected


def test_slack_stand_in_rate_limits_a_second_message(slack_receiver: SlackStandIn) -> None:
    """Two messages within a second: the second gets 429 Retry-After 1 (Slack's limit)."""
    sink = SlackSink(slack_receiver.url)
    sink.send(sample_alert())
    with pytest.raises(DeliveryRetryable) as caught:
        sink.send(sample_alert())
    assert caught.value.retry_after == 1.0
    assert [m.status for m in slack_receiver.messages] == [200, 429]


def test_slack_5xx_and_unreachable_are_retryable(slack_receiver: SlackStandIn) -> None:
    """Slack's 5xx, and a closed port, are retryable."""
    slack_receiver.script([(503, "service_unavailable")])
    with pytest.raises(DeliveryRetryable):
        SlackSink(slack_receiver.url).send(sample_alert())
    closed = f"http://127.0.0.1:{_free_port()}/services/T000/B000/XXXX"
    with pytest.raises(DeliveryRetryable) as caught:
        SlackSink(closed, timeout=2).send(sample_alert())
    assert "XXXX" not in str(caught.value)


def test_slack_timeout_is_retryable() -> None:
    """A Slack answer slower than the timeout gives DeliveryRetryable."""
    with SlackStandIn(hold_s=2.0) as slow, pytest.raises(DeliveryRetryable) as caught:
        SlackSink(slow.url, timeout=0.2).send(sample_alert())
    assert "Slack could not be reached" in str(caught.value)


def test_log_sink_logs_the_payload_with_numbers_masked() -> None:
    """With no sink configured, the alert is one warning line, phone numbers masked."""
    alert = sample_alert()
    with capture_logs() as logs:
        LogSink().send(alert)
    [entry] = logs
    assert entry["event"] == "alert" and entry["log_level"] == "warning"
    assert entry["alert_id"] == alert.alert_id and len(entry["issues"]) == 2
    assert entry["call"]["from"] == "client:alice"
    assert entry["call"]["to"] != alert.call.to and entry["call"]["to"].endswith("23")


def _settings(**env: str) -> Settings:
    return Settings.from_env({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                              "TWILIO_AUTH_TOKEN": "token", **env})


def test_sinks_from_the_variables_are_named_and_found_again() -> None:
    """slack, and one readable webhook-<host> per URL (the same host twice numbered), each found by name."""
    settings = _settings(
        SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T/B/X",
        ALERT_WEBHOOK_URLS="https://a.example.com/in?token=s3cret,https://b.example.com/in,"
                           "https://b.example.com/other",
        ALERT_WEBHOOK_SECRET=WEBHOOK_SECRET)
    sinks = Sinks.from_settings(settings)
    assert sinks.names == ["slack", "webhook-a-example-com", "webhook-b-example-com",
                           "webhook-b-example-com-2"]
    for name in sinks.names:
        assert sinks.get(name).name == name
    assert isinstance(sinks.get("slack"), SlackSink)
    assert isinstance(sinks.get("webhook-a-example-com"), WebhookSink)
    assert "s3cret" not in repr([sinks.get(n) for n in sinks.names])


def test_deliveries_queued_under_an_old_hashed_name_still_find_their_sink() -> None:
    """A delivery job queued by an earlier version (webhook-<8 hex>) reaches the same endpoint."""
    url = "https://a.example.com/in"
    sinks = Sinks.from_settings(_settings(ALERT_WEBHOOK_URLS=url, ALERT_WEBHOOK_SECRET=WEBHOOK_SECRET))
    assert sinks.get(legacy_webhook_sink_id(url)).name == "webhook-a-example-com"


def test_log_sink_when_nothing_configured() -> None:
    """With neither Slack nor webhooks, alerts go to the log."""
    sinks = Sinks.from_settings(_settings())
    assert sinks.names == ["log"] and isinstance(sinks.get("log"), LogSink)


def test_unknown_sink_is_a_clear_permanent_error() -> None:
    """A job naming a sink that is no longer configured fails with reason unknown_sink."""
    with pytest.raises(UnknownSink) as caught:
        Sinks.from_settings(_settings()).get("webhook-deadbeef")
    assert caught.value.reason == "unknown_sink" and "webhook-deadbeef" in str(caught.value)


SLACK_PATH = "/services/T000/B000/XXXX"
HUGE = 300 * 1024 * 1024
#: What a peer may get written into socket buffers before a capped reader hangs up.
FLAT = 64 * 1024 * 1024


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_slack_redirect_is_refused_and_never_followed(status: int) -> None:
    """A 3xx from Slack's URL is a permanent `redirect` rejection; the host its Location names
    gets nothing, and the alert is not recorded as delivered."""
    with HostilePeer(fixed(200, {}, b"ok")) as elsewhere, \
            HostilePeer(fixed(status, {"Location": elsewhere.url + SLACK_PATH})) as slack:
        with pytest.raises(DeliveryRejected) as caught:
            SlackSink(slack.url + SLACK_PATH).send(sample_alert())
        assert caught.value.reason == "redirect" and caught.value.status == status
        assert len(slack.requests) == 1 and elsewhere.requests == []


def test_slack_huge_answer_is_not_read_whole() -> None:
    """A 300 MB answer to a Slack post is cut at a few KB: the alert is refused as an
    unexpected response (not retried, which could duplicate it) and the peer could write only
    what socket buffers hold before callwatch hung up."""
    with HostilePeer(huge(HUGE)) as slack:
        with pytest.raises(DeliveryRejected) as caught:
            SlackSink(slack.url + SLACK_PATH).send(sample_alert())
        assert caught.value.reason == "unexpected_response"
    assert slack.sent < FLAT


def test_slack_answer_dripping_past_the_deadline_ends_the_send() -> None:
    """An answer that drips a byte at a time ends at the send's deadline, not after the
    per-read timeout times the number of bytes."""
    ticks = iter(range(1000))  # each look at the clock is a second later
    with HostilePeer(drip(0.01, announced=1000)) as slack:
        sink = SlackSink(slack.url + SLACK_PATH, deadline_s=5, monotonic=lambda: float(next(ticks)))
        with pytest.raises(DeliveryRejected) as caught:
            sink.send(sample_alert())
    assert caught.value.reason == "unexpected_response"
    assert 0 < slack.sent < 20


def test_webhook_huge_answer_is_not_read(session: requests.Session) -> None:
    """A receiver's 2xx with a 300 MB body is delivered without reading the body."""
    with HostilePeer(huge(HUGE)) as receiver:
        WebhookSink(receiver.url + "/hooks/x", WEBHOOK_SECRET, session=session).send(sample_alert())
    assert len(receiver.requests) == 1 and receiver.sent < FLAT
