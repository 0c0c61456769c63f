"""Buttons on Slack messages, and what a click does: silence an issue or an agent for an
hour, or acknowledge an incident. Domain code: the web edge (``service.web.slack_actions``)
verifies Slack's signature and hands the payload here.

The buttons themselves are drawn by ``service.delivery.sinks.slack_blocks``. A button's
``action_id`` says what to do and its ``value`` what to do it to: an issue
key (``silence_issue``), an agent's identity (``silence_agent``) or an incident id
(``acknowledge``). ``read_action`` checks a ``block_actions`` payload and refuses
anything else with ``InvalidInput``; ``perform`` acts through the same code as the CLI
(``Silences``, ``acknowledge``) with the Slack user as author, at most once per click
(Slack's ``action_ts`` and the user, kept a day), and says what it did in a line. The
click is recorded only after it acted, and acting is idempotent (a silence's id is the
click's, an acknowledgement is kept once), so Slack's retry after a failure in between
acts once;
``answer`` is the message update sent back to the payload's ``response_url`` (the
original message, its buttons replaced by that line), and ``post_answer`` sends it:
HTTPS (or loopback) only, through the sinks' one POST path (no redirect, a capped answer
read before a deadline).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis as redis_lib
import requests

from service import keys
from service.delivery.incidents.acknowledge import acknowledge
from service.delivery.silences import Silences
from service.delivery.sinks.escaping import slack_reserved
from service.delivery.sinks.fitting import json_bytes
from service.delivery.sinks.json_post import post
from service.delivery.sinks.slack_blocks import (
    ACKNOWLEDGE,
    SILENCE_AGENT,
    SILENCE_ISSUE,
    button_value_ok,
)
from service.errors import ConfigError, DeliveryRetryable, InvalidInput
from service.http import require_secure_url
from service.routing_file.matchers import parse_matcher

ACTION_IDS = (SILENCE_ISSUE, SILENCE_AGENT, ACKNOWLEDGE)
#: How long a silence set from Slack lasts (the buttons say so).
SILENCE_FOR = timedelta(hours=1)
#: A click already acted on is remembered this long (Slack's ``action_ts`` is unique).
CLICK_TTL_S = 86400
#: Connect and per-read timeouts of the update; the whole exchange ends by the deadline.
RESPONSE_TIMEOUT = (1.0, 1.5)
#: Slack wants its request answered within 3 s: the whole update (connect, headers and
#: body) must be done before that.
RESPONSE_DEADLINE_S = 2.5
_VALUE_KINDS = {SILENCE_ISSUE: "an issue key", SILENCE_AGENT: "an identity",
                ACKNOWLEDGE: "an incident id"}


@dataclass(frozen=True)
class SlackAction:
    """One click, read from Slack's payload."""

    action_id: str
    value: str
    user: str
    user_id: str
    action_ts: str
    response_url: str | None
    #: The message the button was on (Slack sends it back), to update it in place.
    message: Mapping[str, Any] | None = None

    @property
    def click_key(self) -> str:
        return f"{self.user_id}:{self.action_ts}:{self.action_id}"

    @property
    def silence_id(self) -> str:
        """The id of the silence this click sets: the same for Slack's retries of it."""
        return "sil_" + hashlib.sha256(self.click_key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Done:
    """What a click did, in one line a channel can read."""

    text: str
    wrote: bool


class UnknownIncident(InvalidInput):
    """The button names an incident callwatch no longer keeps."""


def read_action(payload_text: str) -> SlackAction:
    """The click in a ``payload`` form field; ``InvalidInput`` says what is wrong with it."""
    try:
        payload = json.loads(payload_text)
    except ValueError:
        raise InvalidInput("payload is not JSON") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise InvalidInput("only block_actions payloads (button clicks) are answered here")
    actions = payload.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise InvalidInput("a block_actions payload carries exactly one action")
    action = actions[0]
    action_id, value = action.get("action_id"), action.get("value")
    if action_id not in ACTION_IDS:
        raise InvalidInput(f"unknown action_id {str(action_id)[:40]!r}; "
                           f"callwatch's are {', '.join(ACTION_IDS)}")
    if not isinstance(value, str) or not button_value_ok(action_id, value):
        raise InvalidInput(f"{action_id}: the button's value is not {_VALUE_KINDS[action_id]}")
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"]:
        raise InvalidInput("the payload names no user")
    name = next((str(user[k]) for k in ("username", "name") if isinstance(user.get(k), str) and user[k]),
                user["id"])
    response_url = payload.get("response_url")
    if response_url is not None:
        if not isinstance(response_url, str):
            raise InvalidInput("response_url is not a URL")
        try:
            require_secure_url(response_url, "response_url")
        except ConfigError as error:
            raise InvalidInput(error.message) from None
    action_ts = action.get("action_ts")
    message = payload.get("message")
    return SlackAction(action_id=action_id, value=value, user=name[:80], user_id=user["id"][:40],
                       action_ts=str(action_ts)[:40] if action_ts else str(time.time()),
                       response_url=response_url,
                       message=message if isinstance(message, dict) else None)


def check_target(action: SlackAction, redis: redis_lib.Redis) -> None:
    """``UnknownIncident`` when the button names an incident that is not kept (a read only)."""
    if action.action_id == ACKNOWLEDGE and not redis.exists(keys.incident(action.value)):
        raise UnknownIncident(f"incident {action.value} is not known (resolved over a week ago?)")


def perform(action: SlackAction, *, redis: redis_lib.Redis,
            clock: Callable[[], datetime]) -> Done:
    """Create the silence or the acknowledgement, once per click; say what was done.
    Everything is checked before the first write, so a refused click changes nothing."""
    check_target(action, redis)
    matcher = None
    if action.action_id != ACKNOWLEDGE:
        key = "issue" if action.action_id == SILENCE_ISSUE else "identity"
        value = _glob_escape(action.value) if key == "issue" else action.value
        try:
            matcher = parse_matcher({key: [value]}, "silence")
        except ConfigError as error:
            raise InvalidInput(error.message) from None
    click = keys.slack_action(action.click_key)
    if redis.exists(click):
        return Done(f"{action.user}'s click was already acted on", wrote=False)
    done = _act(action, matcher, redis=redis, clock=clock)
    redis.set(click, "1", ex=CLICK_TTL_S)  # after acting: a failure before this acts again, once
    return done


def _act(action: SlackAction, matcher: Any, *, redis: redis_lib.Redis,
         clock: Callable[[], datetime]) -> Done:
    """The silence or the acknowledgement itself; safe to repeat for one click."""
    now = clock()
    if matcher is None:
        ack = acknowledge(redis, action.value, action.user, now)
        if ack is None:  # expired between the check and now
            raise UnknownIncident(f"incident {action.value} is not known")
        if not ack.new:
            return Done(f"{ack.by} had already acknowledged this incident at {ack.at:%H:%M} UTC",
                        wrote=False)
        return Done(f":eyes: {action.user} acknowledged this incident at {now:%H:%M} UTC: "
                    "updates stop here; the resolution will still be posted", wrote=True)
    silence = Silences(redis, clock=clock).add(matcher, SILENCE_FOR, "set from Slack",
                                               author=action.user, silence_id=action.silence_id)
    what = f"issue {action.value}" if action.action_id == SILENCE_ISSUE else f"agent {action.value}"
    return Done(f":no_bell: {action.user} silenced {what} for 1 h, until "
                f"{silence.ends_at:%H:%M} UTC ({silence.id}; "
                f"`callwatch silence expire {silence.id}` ends it)", wrote=True)


def _glob_escape(text: str) -> str:
    """An issue key as a glob that matches only itself."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def answer(action: SlackAction, done: Done) -> dict[str, Any]:
    """The ``response_url`` body: the original message with its buttons replaced by what
    was done (so the channel sees who did what), or that line alone."""
    text = slack_reserved(done.text)
    original = action.message or {}
    blocks = original.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return {"replace_original": False, "response_type": "in_channel", "text": text}
    kept = [b for b in blocks if isinstance(b, dict) and b.get("type") != "actions"][:49]
    line = {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:2000]}]}
    return {"replace_original": True, "text": str(original.get("text") or text),
            "blocks": [*kept, line]}


class ResponseFailed(Exception):
    """Slack's ``response_url`` did not take the update (the action itself was done)."""


def post_answer(session: requests.Session, url: str, body: Mapping[str, Any], *,
                monotonic: Callable[[], float] = time.monotonic) -> str:
    """POST the update to ``response_url`` through the sinks' one POST path (no redirect, a
    capped answer, a deadline); Slack's short answer, or ``ResponseFailed``."""
    data = json_bytes(body, ascii_only=True)
    try:
        answer = post(session, require_secure_url(url, "response_url"), data,
                      {"Content-Type": "application/json"}, who="Slack's response_url",
                      timeout=RESPONSE_TIMEOUT, deadline_s=RESPONSE_DEADLINE_S, monotonic=monotonic)
    except DeliveryRetryable as error:
        raise ResponseFailed(str(error)) from None
    if answer.status != 200:
        raise ResponseFailed(f"response_url answered {answer.status} {answer.text.strip()[:64]}")
    return answer.text.strip()
