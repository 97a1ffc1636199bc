"""Core tests share the loopback HTTP server with the connector tests."""

from tests.loopback import LoopbackHTTP, http_server

__all__ = ["LoopbackHTTP", "http_server"]
