"""Dependencies shared by routes: the runtime, the caller, the services.

All are ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, which
would cost more than the cached read they guard.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

from personae.auth.browser import COOKIE_NAME, CSRF_HEADER, BrowserSession
from personae.auth.principal import Principal, is_api_key_format
from personae.config import is_loopback_host
from personae.conversations.engine import ConversationService
from personae.errors import AuthenticationRequired, PermissionDenied
from personae.ops.ratelimit import MODEL_CLASSES, Caller, RouteClass, caller_for, classify
from personae.personas.service import PersonaService
from personae.providers import metering
from personae.runtime import Runtime


def runtime_of(connection: HTTPConnection) -> Runtime:
    """The runtime the app's lifespan opened (one per process)."""
    runtime: Runtime = connection.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


def _token(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise AuthenticationRequired("Authorization header must be 'Bearer <api key>'")
    return request.headers.get("x-api-key")


async def get_principal(request: Request) -> Principal:
    """The caller, from an API key; keyless only on a loopback-bound local server.
    Counted against the caller's budget for the route's class (429 when spent)."""
    principal = await principal_for(request, _token(request))
    scope = request.scope
    scope["personae.user_id"] = principal.user_id
    await _admit(request, principal, classify(scope["method"], route_template(scope)))
    return principal


async def websocket_principal(websocket: WebSocket) -> Principal:
    """Browsers cannot set headers on a WebSocket: ``?api_key=`` is accepted there too.
    Opening a socket counts as an ``other`` request; each turn on it as a chat request
    (:func:`admit_turn`)."""
    token = _token(websocket) or websocket.query_params.get("api_key")
    principal = await principal_for(websocket, token)
    websocket.scope["personae.user_id"] = principal.user_id
    await _admit(websocket, principal, RouteClass.other)
    return principal


async def _admit(connection: HTTPConnection, principal: Principal,
                 route_class: RouteClass) -> None:
    """Count the request; check the token budget before model work; meter its tokens."""
    limiter = runtime_of(connection).limiter
    if not limiter.enabled:
        return
    caller = _caller(connection, principal)
    state = await limiter.hit(caller, route_class)
    if state is not None:
        connection.scope["personae.rate_limit"] = state
    if route_class in MODEL_CLASSES:
        await limiter.check_tokens(caller, route_class)
    metering.meter.set(limiter.meter_for(caller))


async def admit_turn(connection: HTTPConnection, principal: Principal) -> None:
    """A turn on a WebSocket or voice call: counted as a chat request, and refused
    (:class:`~personae.errors.RateLimited`) when the caller's chat or token budget is
    spent; the socket stays open."""
    limiter = runtime_of(connection).limiter
    caller = _caller(connection, principal)
    await limiter.hit(caller, RouteClass.chat)
    await limiter.check_tokens(caller, RouteClass.chat)


def _caller(connection: HTTPConnection, principal: Principal) -> Caller | None:
    client = connection.scope.get("client")
    return caller_for(principal, client[0] if client else None)


def route_template(scope: Mapping[str, Any]) -> str:
    """The matched route's template with its router prefixes (``/v1/personas/{persona_id}``);
    FastAPI keeps it on its effective route context (``scope["route"]`` is the route as
    its router declared it, without the ``/v1`` prefix)."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if template:
        return str(template)
    route = scope.get("route")
    return str(getattr(route, "path_format", None) or getattr(route, "path", ""))


async def principal_for(request: HTTPConnection, token: str | None) -> Principal:
    """The key's owner. In keyless loopback mode no key, or a placeholder that is not in
    Personae's key format (OpenAI clients insist on sending one: ``"x"``, ``"local"``,
    ``"DUMMY_KEY"``, ...), is the local admin, as local OpenAI-compatible servers accept
    any placeholder; a ``pk_`` key is always checked (unknown or revoked: 401). Without
    a key, a dashboard session cookie names the key its browser signed in with."""
    runtime = runtime_of(request)
    client = request.client.host if request.client else ""
    keyless = runtime.settings.keyless_allowed and _is_loopback_client(client)
    if token and (is_api_key_format(token) or not keyless):
        return await authenticate_key(request, token)
    session = browser_session(request) if token is None else None
    if session is not None:
        check_browser_request(request, session)
        if session.key_id is not None:
            return await runtime.auth.authenticate_browser(session.key_id, session.issued_at,
                                                           session.session_id)
    if keyless:
        check_keyless_request(request)
        local_admin: Principal = request.app.state.local_admin
        return local_admin
    raise AuthenticationRequired(
        "an API key is required: send 'Authorization: Bearer <key>' "
        "(create one with `personae keys create USER`)")


async def authenticate_key(connection: HTTPConnection, token: str) -> Principal:
    """The key's owner, unless the client's address has sent too many wrong keys
    (:class:`~personae.errors.RateLimited`, the key unchecked); a wrong key is counted
    against its address, in the limiter's storage that every process shares."""
    runtime = runtime_of(connection)
    address = connection.client.host if connection.client else None
    await runtime.limiter.check_auth_failures(address)
    try:
        return await runtime.auth.authenticate(token)
    except AuthenticationRequired:
        await runtime.limiter.count_auth_failure(address)
        raise


def browser_session(connection: HTTPConnection) -> BrowserSession | None:
    """The dashboard session the request's cookie carries (none if absent, forged or
    expired)."""
    cookie = connection.cookies.get(COOKIE_NAME)
    if cookie is None:
        return None
    return runtime_of(connection).browser_sessions.read(cookie)


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def check_browser_request(connection: HTTPConnection, session: BrowserSession) -> None:
    """A request that rides on the browser's cookie must come from the dashboard itself:
    a change carries the page's CSRF token in ``X-CSRF-Token`` (the sign-in and sign-out
    forms, in their ``csrf_token`` field, checked by their own routes); a WebSocket
    opened by a page of another origin is refused."""
    if connection.scope["type"] == "websocket":
        check_same_origin(connection)
    elif (connection.scope["method"] in UNSAFE_METHODS
          and not session.csrf_matches(connection.headers.get(CSRF_HEADER))):
        raise PermissionDenied("this change did not come from a dashboard page (its CSRF "
                               f"token is missing or wrong): reload the page, or send an "
                               f"API key instead of the cookie; header {CSRF_HEADER}")


def check_keyless_request(connection: HTTPConnection) -> None:
    """A keyless request acts as the local admin, so a browser must not be made to send
    one for another site: a change (or a socket) from a page of another origin is
    refused, and so is a ``Host`` that is not this machine's, which is what a DNS
    rebinding attack sends (``attacker.example`` made to resolve to 127.0.0.1).
    Programs (curl, SDKs) send no ``Origin`` and name the host they dialled."""
    host = connection.headers.get("host", "")
    if not _is_local_host_header(host):
        raise PermissionDenied(
            f"a keyless local server answers only for this machine, not Host {host[:100]!r}: "
            "use http://127.0.0.1 or http://localhost, or send an API key")
    if (connection.scope["type"] == "websocket"
            or connection.scope["method"] in UNSAFE_METHODS):
        check_same_origin(connection)


def _is_local_host_header(host: str) -> bool:
    """``localhost``, a loopback address, or a name with no dot (never a public DNS name
    an attacker could point at this machine), with or without a port."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if not name or "." not in name or name.endswith(".localhost"):
        return True
    return _is_loopback_client(name)


def check_same_origin(connection: HTTPConnection) -> None:
    """Refuse a browser whose page is on another origin than this server (unless that
    origin is allowed by ``cors_origins``)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return
    host = connection.headers.get("host", "")
    allowed = runtime_of(connection).settings.cors_origins
    if origin.split("://", 1)[-1] != host and origin not in allowed:
        raise PermissionDenied(f"a page on {origin} may not open this socket",
                               {"origin": origin})


# Parsing the address on every request costs more than the rest of this check.
_is_loopback_client = functools.lru_cache(maxsize=1024)(is_loopback_host)


async def get_persona_service(request: Request) -> PersonaService:
    return runtime_of(request).personas


async def get_conversations(request: Request) -> ConversationService:
    return runtime_of(request).conversations


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ConversationsDep = Annotated[ConversationService, Depends(get_conversations)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
PersonaServiceDep = Annotated[PersonaService, Depends(get_persona_service)]
