"""Every way a connection can end, against real loopback sockets: before the request was
written the send is `failed`; once it was written, an end without an answer is `unknown`, and
the retry reuses the idempotency key (the receiver can drop the duplicate)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.loopback import closed_port
from workflows.connectors.http import post_json

TIMEOUT_S = 0.5


@dataclass
class RawServer:
    """Accepts connections on 127.0.0.1 and ends each one as ``behaviour`` says."""

    behaviour: Callable[[socket.socket], None]
    port: int = 0
    received: list[bytes] = field(default_factory=list)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(2)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    sockets: list[socket.socket] = []

    def start(behaviour: Callable[[socket.socket], None]) -> RawServer:
        server = RawServer(behaviour)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(5)
        server.port = listener.getsockname()[1]
        sockets.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                server.received.append(_read_request(conn))
                behaviour(conn)

        threading.Thread(target=serve, daemon=True).start()
        return server

    yield start
    for sock in sockets:
        sock.close()


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _close(conn: socket.socket) -> None:
    conn.shutdown(socket.SHUT_RDWR)


def _stall(conn: socket.socket) -> None:
    time.sleep(TIMEOUT_S * 3)


def _half_answer(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    _reset(conn)


@pytest.mark.parametrize(("behaviour", "error"), [
    (_reset, "no_answer_after_send: ReadError"),
    (_close, "no_answer_after_send: RemoteProtocolError"),
    (_stall, "timeout_after_send: ReadTimeout"),
    (_half_answer, "no_answer_after_send: ReadError"),
], ids=["reset-after-request", "eof-without-answer", "read-timeout", "reset-mid-answer"])
def test_an_end_after_the_request_is_unknown(raw_server: Callable[..., RawServer],
                                             behaviour: Callable[[socket.socket], None],
                                             error: str) -> None:
    server = raw_server(behaviour)
    outcome = post_json(f"http://127.0.0.1:{server.port}/hook", b'{"a": 1}',
                        {"Idempotency-Key": "k-1"}, TIMEOUT_S)
    assert server.received and server.received[0].endswith(b'{"a": 1}')  # it was all sent
    assert (outcome.status, outcome.error) == ("unknown", error)


def test_a_refused_connection_is_failed() -> None:
    outcome = post_json(f"http://127.0.0.1:{closed_port()}/hook", b"{}", {}, TIMEOUT_S)
    assert (outcome.status, outcome.error) == ("failed", "connection_refused")


def test_a_connect_timeout_is_failed() -> None:
    """A listener whose accept queue is full drops new SYNs: the connect never completes."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the queue (never accepted)
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        outcome = post_json(f"http://127.0.0.1:{port}/hook", b"{}", {}, TIMEOUT_S)
        assert (outcome.status, outcome.error) == ("failed", "connect_timeout")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def _smtp_server(drop_after: bytes) -> tuple[socket.socket, list[bytes]]:
    """A minimal SMTP peer that answers every command with 250 (354 for DATA) and drops the
    connection once it has read a command starting with ``drop_after``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)
    seen: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            conn.sendall(b"220 loopback ESMTP\r\n")
            buffer = b""
            in_data = False
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    if in_data:
                        if line == b".":
                            seen.append(b"<message>")
                            _close(conn)
                            return
                        continue
                    seen.append(line)
                    if line.upper().startswith(drop_after):
                        _close(conn)
                        return
                    if line.upper().startswith(b"DATA"):
                        in_data = True
                        conn.sendall(b"354 go ahead\r\n")
                    else:
                        conn.sendall(b"250 ok\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return listener, seen


@pytest.mark.parametrize(("drop_after", "status", "error"), [
    (b"MAIL FROM", "failed", "disconnected"),
    (b"RCPT TO", "failed", "disconnected"),
    (b"<never>", "unknown", "disconnected_after_send"),  # drops after the message's final dot
], ids=["before-rcpt", "before-data", "after-the-message"])
def test_smtp_failures_before_data_are_failed(drop_after: bytes, status: str,
                                              error: str) -> None:
    from store.config import CavraConfig, EmailProvider
    from workflows.connectors.base import OutboundMessage
    from workflows.connectors.email import EmailConnector

    listener, seen = _smtp_server(drop_after)
    try:
        settings = EmailProvider(kind="email", host="127.0.0.1",
                                 port=listener.getsockname()[1], starttls=False,
                                 sender="cavra@example.invalid", to=["oncall@example.invalid"],
                                 timeout_s=TIMEOUT_S)
        connector = EmailConnector("mail", settings, CavraConfig())
        outcome = connector.send(OutboundMessage(
            delivery_id="dlv-0000000001", kind="escalation", provider="mail",
            idempotency_key="cavra:esc-1:mail:1", plan_id="esc-1", schedule_run_id=None, attempt=1,
            message={"title": "t", "summary": "s"}))
    finally:
        listener.close()
    assert (outcome.status, outcome.error) == (status, error), seen
