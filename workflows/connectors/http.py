"""One HTTP POST → one honest outcome. Shared by the webhook, Slack and PagerDuty kinds."""

from __future__ import annotations

import functools
import logging
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from workflows.connectors.base import Outcome, Stopwatch, error_class

MAX_RETRY_AFTER_S = 86_400
IDEMPOTENCY_KEY = "Idempotency-Key"
# httpx logs every request's full URL at INFO, and webhook URLs carry tokens.
for _noisy in ("httpx", "httpcore"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Building a verifying context loads the CA bundle (~25 ms): do it once per process."""
    return ssl.create_default_context()


def parse_retry_after(value: str | None, now: datetime | None = None) -> int | None:
    """Seconds, or an HTTP date; anything else is ignored rather than trusted."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = int((when - (now or datetime.now(UTC))).total_seconds())
    return min(max(seconds, 0), MAX_RETRY_AFTER_S)


def sf_string(value: str) -> str:
    """A structured-field string (RFC 9651 §3.3.3): quoted, ``\\`` and ``"`` escaped. Only
    printable ASCII can be one."""
    if any(not " " <= ch <= "~" for ch in value):
        raise ValueError("a structured-field string holds printable ASCII only")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def idempotency_header(key: str, style: str = "quoted") -> dict[str, str]:
    """``Idempotency-Key`` as the IETF httpapi-idempotency-key draft defines it (a
    structured-field string, ``"…"``), or ``bare`` for receivers that want the old form."""
    return {IDEMPOTENCY_KEY: key if style == "bare" else sf_string(key)}


def _connect_failure(exc: httpx.ConnectError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return "tls_error"
        text = str(cause).lower()
        if "name or service not known" in text or "nodename nor servname" in text or (
                "temporary failure in name resolution" in text) or "getaddrinfo" in text:
            return "dns_failure"
        if "refused" in text:
            return "connection_refused"
        cause = cause.__cause__ or cause.__context__
    return "connect_error"


@functools.cache
def _client() -> httpx.Client:
    """One client for every send, shared by the parallel senders (httpx clients are
    thread-safe): building one per send cost more than a loopback request. Connections are
    not kept alive, so each attempt still opens its own, as a fresh client would."""
    return httpx.Client(follow_redirects=False, verify=_tls_context(),
                        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> httpx.Response:
    """``_client().post(...)`` without the client's layers a send never uses (cookies,
    redirects, event hooks): the same request (the client's headers, updated with ours, and
    its timeout), sent through the transport the client would pick for the URL (a proxy from
    the environment, else its pool), and the answer read whole. Each send is on the live
    retry run's hot path, and those layers cost about a tenth of a loopback request. A fresh
    client per attempt carried no cookies either. A URL the client would rework (relative,
    or with credentials, which it turns into Basic auth) takes the client's own path."""
    client = _client()
    ours = {"Content-Type": "application/json", "User-Agent": "cavra/0.1", **headers}
    target = httpx.URL(url)
    if not target.is_absolute_url or target.username or target.password:
        return client.post(url, content=body, timeout=httpx.Timeout(timeout_s), headers=ours)
    merged = httpx.Headers(client.headers)
    merged.update(ours)
    request = httpx.Request("POST", target, content=body, headers=merged,
                            extensions={"timeout": httpx.Timeout(timeout_s).as_dict()})
    response = client._transport_for_url(target).handle_request(request)
    try:
        response.read()
    finally:
        response.close()
    return response


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Outcome:
    watch = Stopwatch()
    try:
        response = _post(url, body, headers, timeout_s)
    except httpx.ConnectTimeout:
        # Never connected: the request was not sent, so this is a plain failure.
        return Outcome(status="failed", latency_ms=watch.ms(), error="connect_timeout")
    except httpx.ConnectError as exc:
        return Outcome(status="failed", latency_ms=watch.ms(), error=_connect_failure(exc))
    except (httpx.PoolTimeout, httpx.WriteTimeout, httpx.WriteError,
            httpx.LocalProtocolError) as exc:
        # The request never left whole: the provider cannot have acted on it.
        return Outcome(status="failed", latency_ms=watch.ms(),
                       error=f"not_sent: {error_class(exc)}")
    except httpx.ReadTimeout as exc:
        # Sent but no answer in time: the provider may have acted on it.
        return Outcome(status="unknown", latency_ms=watch.ms(),
                       error=f"timeout_after_send: {error_class(exc)}")
    except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
        # Sent, then the connection was reset or closed without an answer: the provider may
        # have acted on it, so the retry must reuse the idempotency key.
        return Outcome(status="unknown", latency_ms=watch.ms(),
                       error=f"no_answer_after_send: {error_class(exc)}")
    except httpx.UnsupportedProtocol:
        return Outcome(status="failed", latency_ms=watch.ms(), error="invalid_url")
    except httpx.HTTPError as exc:  # anything else came after the request was written
        return Outcome(status="unknown", latency_ms=watch.ms(),
                       error=f"http_error_after_send: {error_class(exc)}")
    except (httpx.InvalidURL, ValueError):  # a malformed URL from the environment
        return Outcome(status="failed", latency_ms=watch.ms(), error="invalid_url")
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(status="delivered", status_code=code, latency_ms=watch.ms())
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if code in (429, 503) \
        else None
    label = "rate_limited" if code == 429 else "client_error" if code < 500 else "server_error"
    if code < 400:
        label = "unexpected_status"
    return Outcome(status="failed", status_code=code, latency_ms=watch.ms(),
                   error=f"{label}: HTTP {code}", retry_after_s=retry_after)
