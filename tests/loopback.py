"""A real HTTP server on 127.0.0.1 that answers from a script and records what it received.

Shared by the core and connector tests and the benchmarks; nothing here talks to anything
but loopback.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def idempotency_key(self) -> str | None:
        """The `Idempotency-Key` header read as the IETF draft's structured-field string,
        by an independent parser (http_sfv); None when absent or not such a string."""
        import http_sfv

        raw = self.headers.get("Idempotency-Key")
        if raw is None:
            return None
        item = http_sfv.Item()
        try:
            item.parse(raw.encode("ascii"))
        except ValueError:
            return None
        return item.value if isinstance(item.value, str) else None


@dataclass
class LoopbackHTTP:
    """Answers each POST with the next scripted (status, headers, delay_s), then 200/202."""

    port: int = 0
    default_status: int = 200
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    # Requests arrive on several threads at once (parallel sends): one takes each answer.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, status: int, headers: dict[str, str] | None = None,
               delay_s: float = 0.0) -> None:
        with self.lock:
            self.script.append((status, headers or {}, delay_s))

    def next_answer(self) -> tuple[int, dict[str, str], float]:
        with self.lock:
            return self.script.pop(0) if self.script else (self.default_status, {}, 0.0)

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # parallel senders connect at once (the default backlog is 5)


@contextmanager
def running_loopback() -> Iterator[LoopbackHTTP]:
    """A server on its own thread for the block's duration (the fixture, or a benchmark)."""
    state = LoopbackHTTP()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(Request(self.path, dict(self.headers.items()), body))
            status, headers, delay = state.next_answer()
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (timeout tests)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTP]:
    with running_loopback() as state:
        yield state
