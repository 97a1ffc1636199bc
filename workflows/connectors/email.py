"""SMTP email: plain text plus an HTML alternative, STARTTLS and login optional.

Only the password is a secret (``password_env``). Errors carry an error class and the SMTP
reply code, never the server's reply text or anything from the exception message.
"""

from __future__ import annotations

import contextlib
import html
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from workflows.connectors.base import Connector, MissingSecret, OutboundMessage, Outcome, Stopwatch
from workflows.connectors.render import (
    Bullets,
    Command,
    Para,
    Part,
    Rendered,
    Table,
    Trend,
    render,
)
from workflows.connectors.secrets import from_env

SUBJECT_LIMIT = 200


TONES = {"critical": "#b3261e", "warning": "#8a5a00", "good": "#1e6b34"}
OPENED, CLOSED = "#8c959f", "#2e7d32"
BAR_PX = 60
CELL = "padding:4px 10px;border-bottom:1px solid #ddd;text-align:left"


def _heading(text: str) -> str:
    # A styled paragraph, not <h3>: escalation mail keeps to p/ul/li (a test pins its tags).
    return (f'<p style="font-size:15px;font-weight:bold;margin:18px 0 6px">'
            f"{html.escape(text)}</p>")


def _bar(value: int, top: int, colour: str, what: str) -> str:
    height = max(2, round(value * BAR_PX / top)) if value and top else 1
    fill = colour if value else "#e0e0e0"
    return (f'<td style="vertical-align:bottom;padding:0 1px">'
            f'<table cellpadding="0" cellspacing="0"><tr><td title="{what} {value}" '
            f'style="width:12px;height:{height}px;background:{fill};font-size:0;'
            f'line-height:0">&nbsp;</td></tr></table></td>')


def _trend_html(trend: Trend) -> str:
    """A bar chart of table cells: renders in every mail client, no image, no script."""
    top = max([d.opened for d in trend.days] + [d.closed for d in trend.days], default=0)
    bars = "".join(
        f'<td style="vertical-align:bottom;height:{BAR_PX}px;padding:0 6px">'
        f'<table cellpadding="0" cellspacing="0"><tr>{_bar(d.opened, top, OPENED, "opened")}'
        f'{_bar(d.closed, top, CLOSED, "closed")}</tr></table></td>' for d in trend.days)
    labels = "".join(
        f'<td style="font-size:11px;text-align:center;padding:2px 6px">'
        f'{html.escape(d.label)}<br>{d.opened}/{d.closed}</td>' for d in trend.days)
    summary = "; ".join(f"{d.label}: {d.opened} opened, {d.closed} closed" for d in trend.days)
    return (_heading(trend.heading) +
            f'<table role="img" aria-label="{html.escape(summary)}" cellpadding="0" '
            f'cellspacing="0"><tr>{bars}</tr><tr>{labels}</tr></table>'
            f'<p style="font-size:12px"><span style="color:{OPENED}">&#9632;</span> opened '
            f'that day / <span style="color:{CLOSED}">&#9632;</span> of those, closed now</p>')


def _table_html(table: Table) -> str:
    heading = _heading(table.heading)
    if not table.rows:
        return heading + f"<p>{html.escape(table.empty.capitalize())}.</p>"
    head = "".join(f'<th style="{CELL}">{html.escape(c)}</th>' for c in table.columns)
    rows = "".join("<tr>" + "".join(f'<td style="{CELL}">{html.escape(c)}</td>' for c in row)
                   + "</tr>" for row in table.rows)
    return (heading + '<table cellpadding="0" cellspacing="0" style="border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def part_html(part: Part) -> str:
    if isinstance(part, Para):
        if part.tone:
            return (f'<p style="font-size:17px;font-weight:bold;color:{TONES[part.tone]}">'
                    f"{html.escape(part.text)}</p>")
        return f"<p>{html.escape(part.text)}</p>"
    if isinstance(part, Bullets):
        items = "".join(f"<li>{html.escape(item)}</li>" for item in part.items)
        return f"{_heading(part.heading)}<ul>{items}</ul>"
    if isinstance(part, Command):
        return (f"<p>{html.escape(part.intro)}</p><p style=\"font-family:Menlo,Consolas,"
                f'monospace;background:#f3f3f3;padding:6px 8px">{html.escape(part.command)}</p>')
    if isinstance(part, Table):
        return _table_html(part)
    return _trend_html(part)


def html_document(rendered: Rendered, footer: str, *, doctype: bool = True) -> str:
    """Well-formed HTML (html5lib parses it without an error); every piece of data escaped."""
    title = html.escape(rendered.title)
    head = (f'<head><meta charset="utf-8"><title>{title}</title></head>' if doctype else "")
    return ((f"<!DOCTYPE html><html lang=\"en\">{head}" if doctype else "<html>")
            + '<body style="font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#222">'
            f"<h2>{title}</h2>{''.join(part_html(part) for part in rendered.parts)}"
            f"<hr><p><small>{html.escape(footer)}</small></p></body></html>")


def build_email(message: OutboundMessage, sender: str, to: list[str]) -> EmailMessage:
    rendered = render(message.kind, message.message)
    mail = EmailMessage()
    mail["Subject"] = rendered.title[:SUBJECT_LIMIT]
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    # One Message-ID per idempotency key: a resend of the same attempt threads as a duplicate.
    mail["Message-ID"] = f"<{message.idempotency_key.replace(':', '.')}@cavra.invalid>"
    mail["X-Cavra-Kind"] = message.kind
    mail["X-Cavra-Delivery-Id"] = message.delivery_id
    mail["X-Cavra-Idempotency-Key"] = message.idempotency_key
    footer = f"{message.kind} · delivery {message.delivery_id} · key {message.idempotency_key}"
    mail.set_content(rendered.text() + f"\n\n-- \n{footer}\n")
    # Escalation mail still opens with a bare <html> (tests/connectors/test_connector_shapes.py
    # pins that); every other kind is a full document with a doctype and a <head>.
    mail.add_alternative(html_document(rendered, footer, doctype=message.kind != "escalation"),
                         subtype="html")
    return mail


def _tls_failure(exc: BaseException) -> bool:
    return isinstance(exc, ssl.SSLError | ssl.CertificateError)


class _SMTP(smtplib.SMTP):
    """Notes when DATA begins: before it the server cannot have accepted the message, so a
    failure there is definite (``failed``); after it, silence is ``unknown``."""

    in_data = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.in_data = True
        return super().data(msg)


class EmailConnector(Connector):
    kind = "email"

    def target(self) -> str:
        # Addresses are contact data, not needed to audit the attempt: keep only a count.
        settings = self.settings
        return f"smtp://{settings.host}:{settings.port}/*** ({len(settings.to)} rcpt)"

    def send(self, message: OutboundMessage) -> Outcome:
        watch = Stopwatch()
        settings = self.settings
        try:
            password = from_env(settings.password_env) if settings.password_env else None
        except MissingSecret as exc:
            return Outcome(status="failed", error=f"missing_secret: {exc}")
        mail = build_email(message, settings.sender, list(settings.to))
        phase = "connect"  # before "data" nothing can have been accepted: failures are definite
        try:
            smtp = _SMTP(settings.host, settings.port, timeout=self.timeout_s)
            try:
                phase = "handshake"
                smtp.ehlo()
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if settings.username:
                    smtp.login(settings.username, password or "")
                phase = "envelope"
                refused = smtp.send_message(mail)
            except BaseException:
                smtp.close()
                raise
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()  # the message was accepted: a failed goodbye changes nothing
        except smtplib.SMTPAuthenticationError as exc:
            return self._failed(watch, "auth_failed", exc.smtp_code)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return self._failed(watch, "recipients_refused", codes[0] if codes else None)
        except smtplib.SMTPSenderRefused as exc:
            return self._failed(watch, "sender_refused", exc.smtp_code)
        except smtplib.SMTPDataError as exc:
            return self._failed(watch, "message_rejected", exc.smtp_code)
        except smtplib.SMTPNotSupportedError:
            label = "starttls_unsupported" if phase == "handshake" else "smtp_unsupported"
            return self._failed(watch, label, None)
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            # smtplib turns a read timeout into "disconnected": look at what caused it.
            timed_out = isinstance(exc, TimeoutError) or isinstance(exc.__context__,
                                                                   TimeoutError)
            if phase == "envelope" and smtp.in_data:
                # The server may have queued the message before going quiet.
                label = "timeout_after_send" if timed_out else "disconnected_after_send"
                return Outcome(status="unknown", latency_ms=watch.ms(), error=label)
            return self._failed(watch, "timeout" if timed_out else "disconnected", None)
        except socket.gaierror:
            return self._failed(watch, "dns_failure", None)
        except ConnectionRefusedError:
            return self._failed(watch, "connection_refused", None)
        except smtplib.SMTPResponseException as exc:
            return self._failed(watch, "smtp_error", exc.smtp_code)
        except (OSError, smtplib.SMTPException) as exc:
            if _tls_failure(exc):
                return self._failed(watch, "tls_error", None)
            return self._failed(watch, f"smtp_error: {exc.__class__.__name__}", None)
        if refused:
            return Outcome(status="delivered", status_code=250, latency_ms=watch.ms(),
                           error=f"partially_refused: {len(refused)} of {len(settings.to)} "
                           "recipients")
        return Outcome(status="delivered", status_code=250, latency_ms=watch.ms())

    @staticmethod
    def _failed(watch: Stopwatch, label: str, code: int | None) -> Outcome:
        text = f"{label}: SMTP {code}" if code else label
        return Outcome(status="failed", status_code=code, latency_ms=watch.ms(), error=text)
