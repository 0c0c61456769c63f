"""``/twilio/status-callback``: verify, parse, schedule the analysis once, answer 204.

The order of checks is deliberate: cheap refusals first (size, media type), then
the signature (a stranger learns nothing about which fields we expect), then the
fields, then one atomic write to Redis (``service.intake``). Any refusal writes
nothing.
"""

from __future__ import annotations

import time

import redis as redis_lib
import structlog
from flask import Blueprint, Request, Response, current_app, request
from werkzeug.exceptions import HTTPException

from service.calls import CALLBACK_PATH, call_from_callback
from service.errors import InvalidField
from service.web.context import MAX_BODY_BYTES, WebContext
from service.web.error_answers import RequestRefused, invalid_field
from service.web.form import FormFields

blueprint = Blueprint("callbacks", __name__)
log = structlog.get_logger(__name__)

FORM_TYPE = "application/x-www-form-urlencoded"
REDIS_RETRY_AFTER_S = 5


@blueprint.route(CALLBACK_PATH, methods=["POST", "GET"])
def status_callback() -> Response:
    context: WebContext = current_app.extensions["callwatch"]
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    if req.method == "POST":
        if req.mimetype != FORM_TYPE:
            raise RequestRefused(415, "unsupported_media_type",
                                 f"Twilio status callbacks are posted as {FORM_TYPE}.")
        # werkzeug stops reading a body without Content-Length at MAX_CONTENT_LENGTH
        # (64 KiB + 1) without raising, so the length read decides
        body = _read_body(req)
        if len(body) > MAX_BODY_BYTES:
            raise RequestRefused(413, "payload_too_large",
                                 f"The body is over {MAX_BODY_BYTES // 1024} KiB.")
        params = FormFields.parse(body)
        signed = params
    else:
        params, signed = FormFields.parse(req.query_string), FormFields()
    if context.signatures is not None and not context.signatures.check(req, signed):
        raise RequestRefused(403, "invalid_signature",
                             "X-Twilio-Signature is missing or does not match this URL and "
                             "body; check PUBLIC_BASE_URL and TWILIO_AUTH_TOKEN.")
    try:
        call = call_from_callback(params)
    except InvalidField as error:
        raise invalid_field(error.field, error.message) from None
    settings = context.settings
    if call.account_sid != settings.twilio_account_sid:
        raise RequestRefused(403, "invalid_signature",
                             "This callback is for another Twilio account.")
    structlog.contextvars.bind_contextvars(call_sid=call.call_sid)
    if not call.is_terminal:
        log.debug("callback_ignored", status=call.status)  # every call sends several
        context.metrics.inc("callwatch_callbacks", outcome="ignored", reason="")
        return Response(status=204)
    try:
        scheduled = context.intake.admit(
            call.to_json(), due_at=time.time() + settings.analysis_delay_seconds)
    except redis_lib.RedisError as error:
        log.error("redis_unavailable", error=type(error).__name__)
        raise RequestRefused(503, "unavailable", "Redis is unreachable; Twilio may retry.",
                             retry_after=REDIS_RETRY_AFTER_S) from None
    if scheduled:
        log.info("analysis_scheduled", delay_s=settings.analysis_delay_seconds,
                 **call.log_fields())
    else:
        log.info("callback_duplicate", status=call.status)
    context.metrics.inc("callwatch_callbacks", outcome="accepted" if scheduled else "duplicate",
                        reason="")
    return Response(status=204)


def _read_body(req: Request) -> bytes:
    """The raw body, read once. A body the server cannot read (broken chunked framing, a
    client gone mid-body) is the client's fault: 400, never a 500 with a traceback.
    gunicorn's parse errors share no base class with werkzeug's, hence the broad catch."""
    try:
        return req.get_data(cache=True)
    except HTTPException:
        raise
    except Exception as error:
        log.info("callback_body_unreadable", error=type(error).__name__)
        raise RequestRefused(400, "invalid_request",
                             "The request body could not be read (broken framing?).") from None
