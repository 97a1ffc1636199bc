"""Real loopback servers for connector tests: a scripted HTTP server and an aiosmtpd server.

Nothing here talks to anything but 127.0.0.1; every wait is bounded by a provider's
``timeout_s`` of under a second.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.connectors.helpers import Cli
from tests.loopback import LoopbackHTTP, Request, closed_port, http_server

# Re-exported: connector tests import these names from here; the fixture registers here.
__all__ = ["LoopbackHTTP", "Request", "closed_port", "http_server"]


@dataclass
class SMTPBehaviour:
    """What the SMTP server does; tests flip these to reproduce provider faults."""

    reject_rcpt: bool = False
    reject_data: bool = False
    data_delay_s: float = 0.0
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class RecordingHandler:
    def __init__(self, behaviour: SMTPBehaviour) -> None:
        self.behaviour = behaviour

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if self.behaviour.reject_rcpt:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.behaviour.data_delay_s:
            await asyncio.sleep(self.behaviour.data_delay_s)
        if self.behaviour.reject_data:
            return "554 5.7.1 rejected by policy"
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.behaviour.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


SMTP_USER = "cavra-bot"


@dataclass
class SMTPServer:
    port: int
    behaviour: SMTPBehaviour
    password: str


def _free_port() -> int:
    return closed_port()


def _authenticator(behaviour: SMTPBehaviour, password: str) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER
              and auth_data.password.decode() == password)
        if ok:
            behaviour.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    return check


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl tool."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=30)
    return cert, key


def _start_smtp(password: str, tls: tuple[Path, Path] | None) -> tuple[Controller, SMTPServer]:
    behaviour = SMTPBehaviour()
    kwargs: dict[str, Any] = {"authenticator": _authenticator(behaviour, password)}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        kwargs.update(tls_context=context, auth_require_tls=True)
    else:
        kwargs.update(auth_require_tls=False)
    port = _free_port()
    controller = Controller(RecordingHandler(behaviour), hostname="127.0.0.1", port=port,
                            ready_timeout=5, **kwargs)
    controller.start()
    return controller, SMTPServer(port=port, behaviour=behaviour, password=password)


SMTP_PASSWORD = "SMTP-PASSWORD-s3cr3t-77"


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """Plain SMTP (no STARTTLS offered); login allowed without TLS."""
    controller, server = _start_smtp(SMTP_PASSWORD, None)
    yield server
    controller.stop()


@pytest.fixture
def smtp_tls_server(tls_files: tuple[Path, Path]) -> Iterator[SMTPServer]:
    """SMTP offering STARTTLS with the self-signed certificate; login only after TLS."""
    controller, server = _start_smtp(SMTP_PASSWORD, tls_files)
    yield server
    controller.stop()


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path, capsys)
