"""Which group of a route an alert belongs to, and the facets an incident counts.

A group is the alert's values for the route's ``group_by`` keys (``{"issue":
"sdk_edge/error/31005"}``); ``[]`` puts every alert of the route in one group. The
group's id is a short hash of the route and those values, safe in a Redis key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from service.analysis.alert import Alert, Issue
from service.analysis.catalogue import event_category
from service.analysis.headline import errors_first, first_issue, identity

#: The value a group key takes when the alert has none (no client metadata, no code).
NONE = "none"


def group_value(alert: Alert, key: str) -> str:
    """The alert's value for one ``group_by`` key."""
    issue = first_issue(alert.issues)
    client = alert.client
    value: object = None
    if key == "issue":
        value = issue.key if issue else None
    elif key == "error_code":
        value = next((i.error_code for i in errors_first(alert.issues) if i.error_code is not None),
                     None)
    elif key == "category":
        value = _category(issue) if issue else None
    elif key == "edge":
        value = issue.edge if issue else None
    elif key == "sdk_type":
        value = client.sdk_type if client else None
    elif key == "country_code":
        value = client.country_code if client else None
    elif key == "account_sid":
        value = alert.call.account_sid
    elif key == "identity":
        value = identity(alert.call)
    return NONE if value is None else str(value)


def group_of(alert: Alert, group_by: tuple[str, ...]) -> dict[str, str]:
    """The alert's group: its value for each ``group_by`` key."""
    return {key: group_value(alert, key) for key in group_by}


def group_hash(route: str, group: Mapping[str, str]) -> str:
    """The SHA-256 (hex) of one route's group: what its ids are cut from."""
    material = json.dumps([route, sorted(group.items())], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def group_id(route: str, group: dict[str, str]) -> str:
    """A short, stable id for one route's group (hex, 16 characters)."""
    return group_hash(route, group)[:16]


def describe_group(group: dict[str, str]) -> str:
    """The group in plain words: ``issue sdk_edge/error/31005, country US``; or every alert."""
    if not group:
        return "every alert of the route"
    return ", ".join(f"{'agent' if key == 'identity' else key.replace('_', ' ')} {value}"
                     for key, value in group.items())


#: How each ``group_by`` key reads before its value in a message ("agent bob").
_KEY_WORDS = {"identity": "agent", "country_code": "country", "sdk_type": "SDK", "edge": "edge",
              "category": "category", "account_sid": "account", "error_code": "error"}


def issue_words(issue_key: str) -> str:
    """An issue key as a person says it: ``31009`` for an error code, ``high jitter`` for
    ``…/high-jitter``, ``calls that failed to connect`` for ``call/failed``."""
    if issue_key == "call/failed":
        return "failed to connect"
    last = issue_key.rstrip("/").rsplit("/", 1)[-1]
    return last.replace("-", " ").replace("_", " ") or issue_key


def group_words(group: dict[str, str], by_issue: dict[str, int] | None = None,
                calls: int | None = None, so_far: bool = False) -> str:
    """An incident's group in words, the agent (or country...) first, then what fails:
    ``31009 on 56 calls``, ``agent bob: 3 calls with high jitter``."""
    what = issue_words(group["issue"]) if "issue" in group and group["issue"] != NONE else None
    if what is None and group.get("error_code", NONE) != NONE:
        what = group["error_code"]
    if what is None and by_issue and group:
        what = issue_words(max(by_issue.items(), key=lambda item: (item[1], item[0]))[0])
    who = ", ".join(f"{_KEY_WORDS.get(key, key.replace('_', ' '))} {value}"
                    for key, value in group.items() if key not in ("issue", "error_code"))
    count = "" if calls is None else f"{calls} call{'s' if calls != 1 else ''}"
    count += " so far" if count and so_far else ""
    if who:
        detail = f"{count} with {what}" if what and count else (what or count or "")
        return f"{who}: {detail}" if detail else who
    if what:
        return f"{what} on {count}" if count else what
    return f"{count} of the route" if count else "every alert of the route"


#: The longest SDK (type and version) and country an incident counts: a client's texts
#: may be 1,000 characters, and every distinct value is a key in the incident's events.
MAX_SDK = 100
MAX_COUNTRY = 8


@dataclass(frozen=True)
class Facets:
    """What an incident counts of each call folded into it."""

    call_sid: str
    issue: str
    error_code: str
    sdk: str
    country: str

    @classmethod
    def of(cls, alert: Alert) -> Facets:
        client = alert.client
        sdk = " ".join(p for p in ((client.sdk_type, client.sdk_version) if client else ()) if p)
        return cls(call_sid=alert.call.call_sid, issue=group_value(alert, "issue"),
                   error_code=group_value(alert, "error_code"), sdk=(sdk or NONE)[:MAX_SDK],
                   country=group_value(alert, "country_code")[:MAX_COUNTRY])


def _category(issue: Issue) -> str:
    own = getattr(issue, "category", None)
    return str(own) if own else event_category(issue.group, issue.name, issue.error_code)
