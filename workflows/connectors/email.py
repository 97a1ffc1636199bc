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
from workflows.connectors.render import render
from workflows.connectors.secrets import from_env

SUBJECT_LIMIT = 200


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
    items = "".join(f"<li>{html.escape(line.removeprefix('- '))}</li>" if line.startswith("- ")
                    else f"<p>{html.escape(line)}</p>" for line in rendered.lines)
    mail.add_alternative(
        f"<html><body><h2>{html.escape(rendered.title)}</h2>{items}"
        f"<hr><p><small>{html.escape(footer)}</small></p></body></html>", subtype="html")
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
