"""A canary: a send goes to the transport httpx's client would pick for its URL
(``Client._transport_for_url``, private) to skip the cookie, redirect and hook layers it never
uses. If an upgrade renames it this fails first and names what to look at, instead of every
send ending as ``unknown (connector_error)`` and nothing reaching a provider."""

from __future__ import annotations

import inspect

import httpx

from tests.loopback import LoopbackHTTP
from workflows.connectors.http import post_json


def test_the_client_still_picks_a_transport_per_url() -> None:
    method = getattr(httpx.Client, "_transport_for_url", None)
    assert callable(method), "httpx.Client._transport_for_url is gone: update connectors/http._post"
    assert list(inspect.signature(method).parameters) == ["self", "url"]
    with httpx.Client() as client:
        transport = client._transport_for_url(httpx.URL("http://127.0.0.1/"))
        assert callable(getattr(transport, "handle_request", None))


def test_a_post_through_it_reaches_the_server_whole(http_server: LoopbackHTTP) -> None:
    outcome = post_json(http_server.url("/hook"), b'{"a": 1}', {"Idempotency-Key": '"k-1"'}, 2)
    assert (outcome.status, outcome.status_code) == ("delivered", 200)
    [request] = http_server.requests
    assert request.body == b'{"a": 1}' and request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "cavra/0.1" and request.idempotency_key == "k-1"
