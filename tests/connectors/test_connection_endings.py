"""Every way a connection can end, against real loopback sockets: before the request was
written the send is `failed`; once it was written, an end without an answer is `unknown`, and
the retry reuses the idempotency key (the receiver can drop the duplicate)."""

from __future__ import annotations

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
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        time.sleep(0.1)
        outcome = post_json(f"http://127.0.0.1:{port}/hook", b"{}", {}, TIMEOUT_S)
        assert (outcome.status, outcome.error) == ("failed", "connect_timeout")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
