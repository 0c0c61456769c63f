"""A Microsoft Teams Workflows webhook stand-in on loopback, for tests and ``make run``.

Answers like a "post to a channel when a webhook request is received" workflow:
202 for a ``message`` with exactly one Adaptive Card attachment within 28 KB; 400
with a short reason otherwise (no card, a second attachment, too large). It records
every request, can be scripted (``.script([(429, "", {"Retry-After": "1"})])``),
holds each answer for ``hold_s`` and prints what it gets when ``echo=True``.
``.url`` is a workflow URL (with a fake ``sig`` in its query, like the real one).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from devtools.background_server import serve_until_interrupted
from devtools.standins import _json, _StandIn

PATH = "/workflows/callwatch/triggers/manual/paths/invoke"
MAX_BYTES = 28 * 1024
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


@dataclass(frozen=True)
class TeamsPost:
    """One request the stand-in received, its size, and how it answered."""

    body: Any
    size: int
    status: int
    received_at: float

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def card(self) -> dict[str, Any]:
        return dict(self.body["attachments"][0]["content"])

    def text(self) -> str:
        """Every ``text`` and fact of the card, one per line: what a person would read
        (markdown's backslash escapes and invisible word joiners taken out: ``shown``)."""
        return shown(self.raw_text())

    def raw_text(self) -> str:
        """Every ``text`` and fact of the card, one per line, as sent (markdown source)."""
        lines: list[str] = []
        for element in self.card.get("body", []):
            if element.get("type") == "TextBlock":
                lines.append(str(element.get("text", "")))
            elif element.get("type") == "FactSet":
                lines += [f"{f.get('title')}: {f.get('value')}" for f in element.get("facts", [])]
        return "\n".join(lines)


def shown(markdown: str) -> str:
    """What Teams shows for escaped markdown text: ``\\*`` reads ``*``, U+2060 is invisible."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


def message_problem(body: Any, size: int) -> str | None:
    """Why the workflow would refuse this body, or None."""
    if size > MAX_BYTES:
        return "RequestEntityTooLarge"
    if not isinstance(body, dict) or body.get("type") != "message":
        return "the body is not a message"
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return "a message carries exactly one attachment"
    card = attachments[0]
    if not isinstance(card, dict) or card.get("contentType") != CARD_TYPE:
        return "the attachment is not an Adaptive Card"
    content = card.get("content")
    if not isinstance(content, dict) or content.get("type") != "AdaptiveCard" \
            or not isinstance(content.get("body"), list):
        return "the Adaptive Card has no body"
    return None


class TeamsStandIn(_StandIn):
    """Speaks like a Teams Workflows webhook at ``.url``."""

    def __init__(self, port: int = 0, *, hold_s: float = 0.0, echo: bool = False,
                 host: str = "127.0.0.1") -> None:
        super().__init__(port, host=host, hold_s=hold_s, echo=echo)
        self.posts: list[TeamsPost] = []

    @property
    def url(self) -> str:
        return self.base_url + PATH + "?api-version=1&sig=standin-signature"

    def accepted(self) -> list[TeamsPost]:
        """Posts answered 202: what the channel would show."""
        with self._lock:
            return [p for p in self.posts if p.accepted]

    def _handle(self, request: Request) -> tuple[int, str, dict[str, str]]:
        if request.method != "POST":
            return 405, "", {}
        if request.path != PATH or request.args.get("sig") != "standin-signature":
            return 401, '{"error":{"code":"DirectApiAuthorizationRequired"}}', {}
        raw = request.get_data()
        body = _json(raw)
        problem = message_problem(body, len(raw))
        answer = self._next_scripted() or (
            (400, f'{{"error":{{"code":"BadRequest","message":"{problem}"}}}}', {}) if problem
            else (202, "", {}))
        post = TeamsPost(body, len(raw), answer[0], time.time())
        with self._lock:
            self.posts.append(post)
        if self.echo:
            print(f"── Teams card ({answer[0]}, {len(raw)} bytes) ──", flush=True)
            if not problem:
                print("\n".join("  " + line for line in post.text().splitlines()), flush=True)
        return answer


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the stand-in until interrupted, printing every card."""
    return serve_until_interrupted(__doc__ or "", 8023, argv,
                                   lambda port: TeamsStandIn(port, echo=True),
                                   lambda server: f"Teams stand-in: url {server.url}")


if __name__ == "__main__":
    raise SystemExit(main())
