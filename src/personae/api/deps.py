"""Dependencies shared by routes: the runtime, the caller, the services.

All are ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, which
would cost more than the cached read they guard.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from personae.auth.principal import Principal
from personae.config import is_loopback_host
from personae.errors import AuthenticationRequired
from personae.personas.service import PersonaService
from personae.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise AuthenticationRequired("Authorization header must be 'Bearer <api key>'")
    return request.headers.get("x-api-key")


async def get_principal(request: Request) -> Principal:
    """The caller, from an API key; keyless only on a loopback-bound local server."""
    runtime: Runtime = request.app.state.runtime
    token = _token(request)
    if token:
        return await runtime.auth.authenticate(token)
    client = request.client.host if request.client else ""
    if runtime.settings.keyless_allowed and is_loopback_host(client):
        return request.app.state.local_admin
    raise AuthenticationRequired(
        "an API key is required: send 'Authorization: Bearer <key>' "
        "(create one with `personae keys create USER`)")


async def get_persona_service(request: Request) -> PersonaService:
    return request.app.state.runtime.personas


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
PersonaServiceDep = Annotated[PersonaService, Depends(get_persona_service)]
