"""A real SMTP server on loopback (aiosmtpd, in-process), for tests and ``make run``.

It takes every message like a mail relay (``250``), keeps each parsed message with
its envelope, and can be scripted: ``.script(["451 4.3.0 Try again later"])``
answers the next DATA commands with those replies, then back to normal. With
``hold_s`` it waits that long before answering DATA (so a crash test can kill the
sender mid-send). ``.url`` is an ``SMTP_URL`` (plain SMTP, no STARTTLS: loopback).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller

from devtools.background_server import serve_until_interrupted

#: A message over this is refused with 552, as a mail server with a 1 MB limit does.
MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server took (or refused), parsed."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    reply: str
    received_at: float
    message: EmailMessage = field(repr=False)
    #: Bytes of the message as received.
    size: int = 0

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("250")

    def part(self, subtype: str) -> str:
        """The ``text/<subtype>`` part's content ("" when absent)."""
        found = self.message.get_body(preferencelist=(subtype,))
        return str(found.get_content()) if found is not None else ""


class _Handler:
    def __init__(self, server: SmtpStandIn) -> None:
        self._server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        return self._server._took(envelope)


class SmtpStandIn:
    """``start()`` serves SMTP on ``host:port`` (0: a free port) until ``stop()``."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", hold_s: float = 0.0,
                 echo: bool = False) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.hold_s = hold_s
        self.echo = echo
        self.mails: list[ReceivedMail] = []
        #: (time.time(), message) for every DATA that arrived, before any hold or answer.
        self.arrived: list[tuple[float, EmailMessage]] = []
        self._lock = threading.Lock()
        self._script: deque[str] = deque()
        self._controller = Controller(_Handler(self), hostname=host, port=self.port,
                                      ready_timeout=10)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, replies: Iterable[str]) -> None:
        """Answer the next DATA commands with these replies, then take mail again."""
        with self._lock:
            self._script.extend(replies)

    def accepted(self) -> list[ReceivedMail]:
        with self._lock:
            return [m for m in self.mails if m.accepted]

    def _took(self, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.arrived.append((time.time(), message))
        if self.hold_s > 0:
            time.sleep(self.hold_s)
        with self._lock:
            reply = self._script.popleft() if self._script else "250 Message accepted for delivery"
        if len(raw) > MAX_BYTES:
            reply = "552 5.3.4 Message size exceeds fixed maximum message size"
        mail = ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), reply, time.time(),
                            message, len(raw))
        with self._lock:
            self.mails.append(mail)
        if self.echo:
            print(f"── email ({reply[:3]}) to {', '.join(mail.rcpt_tos)} ──\n"
                  f"  Subject: {message['Subject']}", flush=True)
        return reply


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Serve SMTP until interrupted, printing every message's subject."""
    return serve_until_interrupted(__doc__ or "", 8025, argv,
                                   lambda port: SmtpStandIn(port, echo=True),
                                   lambda server: f"SMTP stand-in: SMTP_URL={server.url}")


if __name__ == "__main__":
    raise SystemExit(main())
