"""Alerts by email over SMTP: one message per alert, plain text and HTML.

``SMTP_URL`` is ``smtp://user:pass@host:587`` (STARTTLS whenever the server offers
it; without it a password is sent only to a loopback server) or
``smtps://user:pass@host:465`` (TLS from the first byte). The ``Message-ID`` is
derived from the alert id, so a mail system that sees the same alert twice can
tell. SMTP's own answer decides what happens next: a 4xx reply (greylisting, a
full queue) and connection errors are retried, a 5xx reply (unknown recipient,
refused sender, bad credentials) is permanent. A message stays under 1 MB, every
value in the HTML part is escaped and every header is one line (``escaping``). Every socket wait is bounded by
``timeout`` and the whole conversation by ``deadline_s`` (a server that answers
each command just in time is cut off). The password never reaches a log or an error.
"""

from __future__ import annotations

import contextlib
import html
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from service.analysis.alert import Alert
from service.analysis.headline import party
from service.delivery.digests.content import parts as digest_parts
from service.delivery.digests.content import text as digest_text
from service.delivery.digests.content import title as digest_title
from service.delivery.digests.store import Digest
from service.delivery.incidents.content import SEE_THE_REST, facts, headline, sample_sids
from service.delivery.sinks.base import SinkEnv, SinkOptionError, SinkSpec, SinkType, check_digest
from service.delivery.sinks.escaping import header_text
from service.delivery.sinks.fitting import EMAIL_MAX_BYTES, fit_issues
from service.delivery.sinks.slack_blocks import shorten
from service.errors import ConfigError, DeliveryRejected, DeliveryRetryable
from service.http import is_loopback

if TYPE_CHECKING:
    from service.delivery.incidents.events import IncidentEvent

#: Seconds for each socket operation (the connection included).
DEFAULT_TIMEOUT = 10.0
#: The whole send, the connection included: inside the delivery lease
#: (``service.delivery.ledger.DEFAULT_LEASE_S``), so no second worker sends meanwhile.
DEFAULT_DEADLINE_S = 25.0
MAX_DESCRIPTION = 600
#: An incident's or a digest's subject is shortened to this.
MAX_SUBJECT = 200


@dataclass(frozen=True)
class SmtpServer:
    """Where to send: from ``SMTP_URL`` (the password is kept out of ``repr``)."""

    host: str
    port: int
    implicit_tls: bool
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("SMTP_URL", "must look like smtp://user:pass@host:587")
        implicit = parts.scheme == "smtps"
        return cls(host=parts.hostname, port=parts.port or (465 if implicit else 587),
                   implicit_tls=implicit,
                   user=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)


def message_id(alert: Alert, sender: str) -> str:
    """``<alr_…@domain-of-sender>``: the same alert always has the same Message-ID."""
    return _message_id(alert.alert_id, sender)


def _message_id(local: str, sender: str) -> str:
    """``<local@domain-of-sender>`` (``callwatch.invalid`` when the sender names none)."""
    domain = sender.rpartition("@")[2].strip("> ") or "callwatch.invalid"
    return f"<{local}@{domain}>"


def _issue_lines(alert: Alert) -> list[tuple[str, str]]:
    lines = []
    for issue in alert.issues:
        head = f"[{issue.severity}] {issue.key} x{issue.count}"
        if issue.duration_s is not None:
            head += f", raised {issue.duration_s:g} s{' (cleared)' if issue.cleared else ''}"
        description = (issue.description or "")[:MAX_DESCRIPTION]
        lines.append((head, description))
    return lines


def _client_line(alert: Alert) -> str:
    c = alert.client
    if c is None:
        return ""
    parts = [" ".join(filter(None, (c.sdk_type, c.sdk_version, c.platform))),
             " ".join(filter(None, (c.os_name, c.os_version))),
             " ".join(filter(None, (c.device_vendor, c.device_model))),
             " ".join(filter(None, (c.city, c.country_code)))]
    return ", ".join(p for p in parts if p)


def email_text(alert: Alert) -> str:
    """The plain-text part (pure)."""
    call = alert.call
    lines = [f"callwatch {alert.severity}: {alert.summary}", "",
             f"Call:      {call.call_sid} ({call.status}, {call.direction or 'unknown direction'})",
             f"From / to: {party(call.from_)} -> {party(call.to)}",
             f"Account:   {call.account_sid}", "", "Issues:"]
    for head, description in _issue_lines(alert):
        lines.append(f"  - {head}")
        if description:
            lines.append(f"    {description}")
    if alert.truncated_issues:
        lines.append(f"  ... and {alert.truncated_issues} more issues")
    client = _client_line(alert)
    if client:
        lines += ["", f"Client:    {client}"]
    lines += ["", f"Alert id:  {alert.alert_id}"]
    return "\n".join(lines) + "\n"


def email_html(alert: Alert) -> str:
    """The HTML part (pure): the same facts as the text part, escaped."""
    e = html.escape
    call = alert.call
    color = "#b00020" if alert.severity == "error" else "#a15c00"
    items = "".join(f"<li><b>{e(head)}</b>" + (f"<br>{e(d)}" if d else "") + "</li>"
                    for head, d in _issue_lines(alert))
    if alert.truncated_issues:
        items += f"<li>… and {alert.truncated_issues} more issues</li>"
    client = _client_line(alert)
    rows = [("Call", call.call_sid), ("Status", call.status), ("Direction", call.direction or ""),
            ("From", party(call.from_)), ("To", party(call.to)), ("Account", call.account_sid)]
    if client:
        rows.append(("Client", client))
    table = "".join(f"<tr><th align=\"left\">{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return (f"<html><body><h2 style=\"color:{color}\">callwatch {e(alert.severity)}: "
            f"{e(alert.summary)}</h2><table>{table}</table><h3>Issues</h3><ul>{items}</ul>"
            f"<p style=\"color:#666\">alert {e(alert.alert_id)}</p></body></html>")


def email_message(alert: Alert, sender: str, to: Sequence[str]) -> EmailMessage:
    """The whole message for one alert (pure): headers, text part, HTML alternative, within
    ``EMAIL_MAX_BYTES`` (issues that do not fit are counted in "... and N more issues")."""
    fitted = fit_issues(alert, lambda a: len(_alert_message(a, sender, to).as_bytes()),
                        EMAIL_MAX_BYTES)
    return _alert_message(fitted, sender, to)


def _alert_message(alert: Alert, sender: str, to: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    # The summary holds the caller's identity: one line, so it can never start a header.
    message["Subject"] = header_text(f"[callwatch {alert.severity}] {alert.summary}")
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(alert.created_at)
    message["Message-ID"] = message_id(alert, sender)
    message["X-Callwatch-Alert-Id"] = alert.alert_id
    message.set_content(email_text(alert))
    message.add_alternative(email_html(alert), subtype="html")
    return message


class EmailSink:
    """Sends one email per alert through ``SMTP_URL``."""

    pace_s: float | None = None
    kind: str = "email"

    def __init__(self, server: SmtpServer, sender: str, to: Sequence[str], *, name: str,
                 timeout: float = DEFAULT_TIMEOUT, deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        self.name = name
        self._server = server
        self._sender = sender
        self._to = tuple(to)
        self._timeout = timeout
        self._deadline_s = deadline_s

    def __repr__(self) -> str:
        return f"EmailSink(name={self.name!r}, host={self._server.host!r}, to={len(self._to)})"

    def send(self, alert: Alert) -> None:
        """Send the alert's message; raise by SMTP's answer when it is not taken."""
        self.send_message(email_message(alert, self._sender, self._to))

    def send_incident(self, event: IncidentEvent) -> None:
        """One message per incident event; its Message-ID comes from the event's webhook-id."""
        subject, text, html_body = email_incident(event)
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self._sender
        message["To"] = ", ".join(self._to)
        message["Message-ID"] = _message_id(event.webhook_id.replace(":", "."), self._sender)
        message["X-Callwatch-Incident-Id"] = event.incident_id
        message.set_content(text)
        message.add_alternative(html_body, subtype="html")
        self.send_message(message)

    def send_digest(self, digest: Digest) -> None:
        """One message per sink and period; its Message-ID names both, so a resend is the same mail."""
        self.send_message(email_digest(digest, self._sender, self._to))

    def send_message(self, message: EmailMessage) -> None:
        """Send one message (an alert's, or an incident's) to the sink's recipients."""
        where = f"SMTP server {self._server.host}:{self._server.port}"
        started = time.monotonic()
        try:
            with self._connect() as smtp:
                remaining = max(0.0, self._deadline_s - (time.monotonic() - started))
                watchdog = threading.Timer(remaining, _cut_off, args=(smtp,))
                watchdog.daemon = True
                watchdog.start()
                try:
                    self._secure_and_login(smtp, where)
                    refused = smtp.send_message(message, from_addr=self._sender,
                                                to_addrs=list(self._to))
                finally:
                    watchdog.cancel()
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            self._raise(min(codes) if codes else 550, "refused every recipient", where)
        except smtplib.SMTPResponseException as error:
            self._raise(error.smtp_code, _reply(error.smtp_error), where)
        except smtplib.SMTPNotSupportedError:
            raise DeliveryRejected(f"{where} does not support what SMTP_URL asks (AUTH?)",
                                   reason="smtp_not_supported") from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryRetryable(f"{where} could not be reached ({type(error).__name__})") from None
        if refused:
            # Some recipients took it; sending again would duplicate it for them.
            codes = sorted({code for code, _ in refused.values()})
            raise DeliveryRejected(f"{where} refused {len(refused)} of {len(self._to)} recipients "
                                   f"({', '.join(map(str, codes))})", reason="recipients_refused")

    def _connect(self) -> smtplib.SMTP:
        server = self._server
        if server.implicit_tls:
            return smtplib.SMTP_SSL(server.host, server.port, timeout=self._timeout,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(server.host, server.port, timeout=self._timeout)

    def _secure_and_login(self, smtp: smtplib.SMTP, where: str) -> None:
        server = self._server
        smtp.ehlo()
        secure = server.implicit_tls
        if not secure and smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
            secure = True
        if server.user and server.password:
            if not secure and not is_loopback(server.host):
                raise DeliveryRejected(f"{where} offers no STARTTLS: the password is not sent "
                                       "in clear; use smtps:// or a server with STARTTLS",
                                       reason="smtp_no_tls")
            smtp.login(server.user, server.password)

    @staticmethod
    def _raise(code: int, reply: str, where: str) -> None:
        message = f"{where} answered {code}: {reply}"
        if 400 <= code < 500:
            raise DeliveryRetryable(message, status=code)
        raise DeliveryRejected(message, reason=f"smtp_{code}", status=code)


def _cut_off(smtp: smtplib.SMTP) -> None:
    """The deadline passed: wake the blocked read (it raises, and the send is retried)."""
    sock = getattr(smtp, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:200]


def _build(spec: SinkSpec, env: SinkEnv) -> EmailSink:
    settings = env.settings
    if not settings.smtp_url or not settings.alert_email_from:
        raise ConfigError("SMTP_URL", f"sink {spec.name}: email sinks need SMTP_URL and ALERT_EMAIL_FROM")
    return EmailSink(SmtpServer.from_url(settings.smtp_url), settings.alert_email_from,
                     spec.options["to"], name=spec.name)


_EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+\Z")


def _check(options: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``to``: one address or a list of them; the server and sender come from the environment."""
    raw = options["to"]
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise SinkOptionError("to", "name at least one address")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not _EMAIL_RE.match(item):
            raise SinkOptionError(f"to[{index}]", f"{item!r} is not an email address")
    for variable in ("SMTP_URL", "ALERT_EMAIL_FROM"):
        if not environ.get(variable, "").strip():
            raise SinkOptionError("", f"an email sink needs {variable} to be set")
    return {**options, "to": list(items)}


SINK_TYPE = SinkType("email", _build, required=("to",), optional=("digest",),
                     check=lambda options, environ: check_digest(_check(options, environ)))


def email_incident(event: IncidentEvent) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of one incident event's e-mail."""
    subject = header_text(shorten(f"[callwatch] {headline(event)}", MAX_SUBJECT))
    sids = sample_sids(event)
    rest = SEE_THE_REST.replace("`", "")
    text_lines = [headline(event), ""] + [f"{label}: {value}" for label, value in facts(event)]
    text_lines += ["", f"Sample calls ({len(sids)} of {event.data.get('calls')}):"]
    text_lines += [f"  {sid}" for sid in sids] or ["  none yet"]
    text_lines += ["", f"Incident {event.incident_id}. {rest}."]
    rows = "".join(f"<tr><th align=\"left\">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
                   for label, value in facts(event))
    items = "".join(f"<li><code>{html.escape(sid)}</code></li>" for sid in sids) or "<li>none yet</li>"
    body = (f"<h2>{html.escape(headline(event))}</h2><table>{rows}</table>"
            f"<h3>Sample calls ({len(sids)} of {html.escape(str(event.data.get('calls')))})</h3>"
            f"<ul>{items}</ul><p><small>Incident {html.escape(event.incident_id)}. "
            f"{html.escape(rest)}.</small></p>")
    return subject, "\n".join(text_lines) + "\n", body


def email_digest(digest: Digest, sender: str, to: Sequence[str]) -> EmailMessage:
    """A period's digest: plain text and HTML."""
    message = EmailMessage()
    message["Subject"] = header_text(shorten(f"[callwatch] {digest_title(digest)}", MAX_SUBJECT))
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Message-ID"] = _message_id(f"digest.{digest.sink}.{digest.period.key}", sender)
    message.set_content(digest_text(digest))
    rows = "".join(f"<tr><th align=\"left\" valign=\"top\">{html.escape(label)}</th>"
                   f"<td>{html.escape(value).replace(chr(10), '<br>')}</td></tr>"
                   for label, value in digest_parts(digest))
    message.add_alternative(f"<h2>{html.escape(digest_title(digest))}</h2><table>{rows}</table>",
                            subtype="html")
    return message
