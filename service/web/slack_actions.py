"""``POST /slack/actions``: Slack's button clicks. Verify, read, act, answer 200.

Registered only when ``SLACK_SIGNING_SECRET`` is set (otherwise the path is a 404).
Cheap refusals first (media type, size), then Slack's v0 signature with its 5-minute
window (slack_sdk's ``SignatureVerifier``), then the payload; every refusal is a JSON
error and writes nothing. The click is acted on by ``service.delivery.slack_actions``
(a silence or an acknowledgement, the Slack user as author) and the message is
updated through the payload's ``response_url`` before the answer, within Slack's 3 s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import redis as redis_lib
import requests
import structlog
from flask import Blueprint, Flask, Response, current_app, request
from slack_sdk.signature import SignatureVerifier

from service.delivery.slack_actions import (
    ResponseFailed,
    UnknownIncident,
    answer,
    perform,
    post_answer,
    read_action,
)
from service.errors import InvalidInput
from service.http_session import http_session
from service.web.error_answers import RequestRefused

if TYPE_CHECKING:
    from service.settings import Settings
    from service.web.context import WebContext

SLACK_ACTIONS_PATH = "/slack/actions"
#: A click's payload carries the whole message it was on (up to 50 blocks): more than a
#: status callback, far less than this.
MAX_ACTION_BYTES = 512 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
EXTENSION = "callwatch_slack_actions"

blueprint = Blueprint("slack_actions", __name__)
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SlackActionsContext:
    """What the route needs besides ``WebContext``: the verifier, a session, the clock."""

    verifier: SignatureVerifier
    session: requests.Session
    clock: Callable[[], datetime]


def register(app: Flask, settings: Settings, *, session: requests.Session | None = None,
             clock: Callable[[], datetime] | None = None) -> None:
    """Add the route when ``SLACK_SIGNING_SECRET`` is set; do nothing otherwise."""
    if not settings.slack_signing_secret:
        return
    app.extensions[EXTENSION] = SlackActionsContext(
        SignatureVerifier(settings.slack_signing_secret), session or http_session(os.environ),
        clock or (lambda: datetime.now(UTC)))
    app.register_blueprint(blueprint)


@blueprint.post(SLACK_ACTIONS_PATH)
def slack_action() -> Response:
    context: WebContext = current_app.extensions["callwatch"]
    own: SlackActionsContext = current_app.extensions[EXTENSION]
    if request.mimetype != FORM_TYPE:
        raise RequestRefused(415, "unsupported_media_type",
                             f"Slack posts interactions as {FORM_TYPE}.")
    request.max_content_length = MAX_ACTION_BYTES + 1
    body = request.get_data(cache=True)
    if len(body) > MAX_ACTION_BYTES:
        raise RequestRefused(413, "payload_too_large",
                             f"The body is over {MAX_ACTION_BYTES // 1024} KiB.")
    if not _signed(own.verifier, body):
        raise RequestRefused(403, "invalid_signature",
                             "X-Slack-Signature is missing, does not match the body, or its "
                             "X-Slack-Request-Timestamp is more than 5 minutes away; check "
                             "SLACK_SIGNING_SECRET.")
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=10)
        payloads = fields.get("payload") or []
        if len(payloads) != 1:
            raise InvalidInput("the body carries no payload field")
        action = read_action(payloads[0])
    except (InvalidInput, UnicodeDecodeError, ValueError) as error:
        raise RequestRefused(400, "invalid_request", str(error)[:300], field="payload") from None
    structlog.contextvars.bind_contextvars(slack_action=action.action_id)
    try:
        done = perform(action, redis=context.redis, clock=own.clock)
    except UnknownIncident as error:
        raise RequestRefused(404, "not_found", str(error)) from None
    except InvalidInput as error:
        raise RequestRefused(400, "invalid_request", str(error)[:300], field="payload") from None
    except redis_lib.RedisError as error:
        log.error("redis_unavailable", error=type(error).__name__)
        raise RequestRefused(503, "unavailable", "Redis is unreachable; click again shortly.",
                             retry_after=5) from None
    log.info("slack_action_done", action=action.action_id, user=action.user, wrote=done.wrote)
    if action.response_url:
        try:
            post_answer(own.session, action.response_url, answer(action, done))
        except ResponseFailed as error:
            log.warning("slack_response_failed", error=str(error))
    return Response(status=200)


def _signed(verifier: SignatureVerifier, body: bytes) -> bool:
    """Slack's v0 signature over the raw body, its timestamp within 5 minutes."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not signature:
        return False
    try:
        return verifier.is_valid(body, timestamp, signature)
    except UnicodeDecodeError:  # the verifier decodes the body as UTF-8
        return False
