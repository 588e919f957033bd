"""Liveness (``/health``), readiness (``/health/ready``) and the detailed report
(``/health/detailed``: admins by key, or loopback callers)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from pydantic import SecretStr
from starlette.requests import HTTPConnection

from personae import __version__
from personae.api.deps import RuntimeDep, runtime_of
from personae.api.schemas import HealthPublic, error_responses
from personae.api.schemas.health import HealthDetailedPublic, ReadyPublic
from personae.auth.principal import Role
from personae.config import is_loopback_host
from personae.db.engine import head_revision
from personae.errors import AuthenticationRequired, PermissionDenied
from personae.ops.health import (
    Down,
    Health,
    HealthSources,
    NotReady,
    breakers_of,
    database_counts,
    embedded_models,
    queue_ping,
    voice_models,
)
from personae.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/health", responses=error_responses())
async def health(runtime: RuntimeDep) -> HealthPublic:
    personas = await runtime.personas.count()
    return HealthPublic(status="ok", version=__version__, personas=personas)


@router.get("/health/ready", responses=error_responses(503))
async def ready(request: Request) -> ReadyPublic:
    """200 once the database answers (within 2 s) and is migrated to the head revision;
    503 ``not_ready`` with the reason otherwise."""
    ok, report = await health_of(request).ready()
    if not ok:
        raise NotReady(report["reason"], {"database": report["database"]})
    return ReadyPublic(status="ready", database=report["database"])


@router.get("/health/detailed", responses=error_responses(401, 403, 503))
async def detailed(request: Request) -> HealthDetailedPublic:
    """Every dependency and the overall status; 503 ``down`` (the report in its details)
    when the database is unreachable. Admins by key, or loopback callers."""
    await require_operator(request)
    report = await health_of(request).detailed()
    body = HealthDetailedPublic(version=__version__, **report)
    if body.status == "down":
        raise Down("; ".join(body.problems), body.model_dump(mode="json"))
    return body


async def require_operator(connection: HTTPConnection,
                           token: SecretStr | None = None) -> None:
    """Loopback callers pass; others need ``token`` (when set) as their bearer token, or
    an admin's API key: none or a bad one is 401, a member's key 403."""
    client = connection.client.host if connection.client else ""
    if is_loopback_host(client):
        return
    header = connection.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    given = given or connection.headers.get("x-api-key", "")
    if not given:
        raise AuthenticationRequired("send 'Authorization: Bearer <admin api key>'")
    if token is not None and hmac.compare_digest(given.encode(),
                                                 token.get_secret_value().encode()):
        return
    principal = await runtime_of(connection).auth.authenticate(given)
    if principal.role is not Role.admin:
        raise PermissionDenied("only admins (or loopback callers) may read this")


def health_of(connection: HTTPConnection) -> Health:
    """The process's health checker, built on first use from its runtime's parts."""
    state = connection.app.state
    found: Health | None = getattr(state, "health", None)
    if found is None:
        found = state.health = Health(health_sources(runtime_of(connection)))
    return found


def health_sources(runtime: Runtime) -> HealthSources:
    settings = runtime.settings
    return HealthSources(
        revision=runtime.schema_revision, head=head_revision(),
        breakers=breakers_of(runtime.providers, runtime.speech),
        counts=database_counts(runtime.conversations.store, runtime.panel_runner.store,
                               runtime.test_run_job.store),
        disks={"data_dir": settings.data_dir, "audio": runtime.voice.clips.root},
        redis=runtime.limiter.ping if settings.redis_url else None,
        queue=queue_ping(runtime.panels.queue),
        models=embedded_models(runtime.providers), voice_models=voice_models(runtime.speech))
