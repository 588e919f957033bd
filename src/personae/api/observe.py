"""One pure ASGI middleware around every request: id, timing, metrics, access log,
rate-limit and security headers.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``, which copies every body through a
task and breaks streaming): it watches ``send`` go by. For each HTTP request it

- takes ``X-Request-ID`` when it is 1-128 characters of ``[A-Za-z0-9._:-]`` (else makes
  one), returns it, and sets :data:`personae.ops.context.current` for the request;
- on the response's start adds ``X-Content-Type-Options: nosniff``, the
  ``RateLimit-*`` headers the auth dependency left in the scope, and on HTML a
  Content-Security-Policy (unless the page set its own), ``X-Frame-Options: DENY``
  and ``Referrer-Policy: no-referrer``;
- when the body has ended (a streamed reply's last event), records the request in
  the metrics and the access log under its route template (``unmatched`` if none).

WebSocket connections get the request id on their handshake and are counted in
``open_sockets`` while accepted.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personae.api.deps import route_template
from personae.api.errors import unexpected_error
from personae.ops import context
from personae.ops.logging import log_access
from personae.ops.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
RATE_LIMIT_SCOPE = "personae.rate_limit"
USER_SCOPE = "personae.user_id"
UNMATCHED = "unmatched"
# HTML answers may load only this origin's scripts, styles and images, and no frame
# may show them (the docs page sets its own, with its inline script's hash).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; "
    "frame-ancestors 'none'")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_HTML_HEADERS = ((b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"))
_CSP = b"content-security-policy"


def request_id_from(scope: Scope) -> str:
    """The client's ``X-Request-ID`` if well formed, else a new one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _VALID_ID.fullmatch(value):
                return str(value.decode())
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The matched route's template (``/v1/personas/{persona_id}``), or ``unmatched``."""
    return route_template(scope) or UNMATCHED


def response_headers(headers: list[tuple[bytes, bytes]], scope: Scope,
                     request_id: bytes) -> list[tuple[bytes, bytes]]:
    """The response's headers with the request id, rate-limit and security headers."""
    names = {name.lower() for name, _ in headers}
    added = [(REQUEST_ID_HEADER, request_id), _NOSNIFF]
    state = scope.get(RATE_LIMIT_SCOPE)
    if state is not None and b"ratelimit-limit" not in names:
        limit, remaining, reset = state
        added += [(b"ratelimit-limit", str(limit).encode()),
                  (b"ratelimit-remaining", str(remaining).encode()),
                  (b"ratelimit-reset", str(reset).encode())]
    if _is_html(headers):
        added += [pair for pair in _HTML_HEADERS if pair[0] not in names]
        if _CSP not in names:
            added.append((_CSP, CONTENT_SECURITY_POLICY.encode()))
    kept = [(n, v) for n, v in headers
            if n.lower() not in (REQUEST_ID_HEADER, _NOSNIFF[0])]
    return kept + added


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.lower().startswith(b"text/html")
               for name, value in headers)


class Observe:
    """The middleware; the runtime (its metrics) is found on the app's state per call,
    as the app's lifespan opens it after the middleware is built."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = request_id_from(scope)
        raw_id = request_id.encode()
        client = scope.get("client")
        host = client[0] if client else None
        token = context.current.set(context.RequestContext(request_id, host))
        status = 500  # if the app fails before answering
        answered = False

        async def observed(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message["headers"] = response_headers(list(message.get("headers", ())),
                                                      scope, raw_id)
            await send(message)

        try:
            await self.app(scope, receive, observed)
        except Exception as exc:
            if answered:
                raise  # a stream failed midway: the server closes the connection
            # Answered here, inside the request's context, rather than by Starlette's
            # outermost error middleware: the 500 then carries the request id and the
            # headers, and its one log line the request id.
            await unexpected_error(Request(scope, receive), exc)(scope, receive, observed)
        finally:
            context.current.reset(token)
            self._record(scope, status, time.perf_counter() - started, request_id, host)

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str,
                host: str | None) -> None:
        route = route_of(scope)
        metrics = _metrics(scope)
        if metrics is not None:
            metrics.observe_request(scope["method"], route, status, seconds)
        log_access(method=scope["method"], route=route, status=status,
                   duration_ms=seconds * 1000, request_id=request_id,
                   user_id=scope.get(USER_SCOPE), client=host)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from(scope)
        client = scope.get("client")
        token = context.current.set(context.RequestContext(request_id, client[0] if client
                                                           else None))
        kind = "voice" if scope["path"].endswith("/voice") else "session"
        metrics = _metrics(scope)
        opened = False

        async def observed(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()),
                                      (REQUEST_ID_HEADER, request_id.encode())]
                if metrics is not None and not opened:
                    opened = True
                    metrics.socket_opened(kind)
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            context.current.reset(token)
            if opened and metrics is not None:
                metrics.socket_closed(kind)


def _metrics(scope: Scope) -> Metrics | None:
    runtime: Any = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
    return runtime.metrics if runtime is not None else None
