"""A persona's history over HTTP: its versions, the diff between two, rolling back to one,
and the system prompt the current version renders.

Included right after ``personas.router``: together they keep the routes' order (and the
OpenAPI document's) as one router had it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from personae.api.deps import CurrentPrincipal, PersonaServiceDep, RuntimeDep
from personae.api.routes.personas import PERSONA, record_response
from personae.api.schemas import (
    MAX_VERSION,
    PersonaDiffPublic,
    PersonaPromptPublic,
    PersonaRollback,
    VersionPublic,
    VersionsPublic,
    error_responses,
)
from personae.personas.prepared import prompt_tokens

router = APIRouter(prefix="/personas", tags=["personas"])


@router.get("/{persona_id:persona}/versions", responses=error_responses(401, 404))
async def list_versions(persona_id: str, principal: CurrentPrincipal,
                        service: PersonaServiceDep) -> VersionsPublic:
    versions = await service.versions(principal, persona_id)
    return VersionsPublic.model_validate({
        "data": [v.public(with_definition=False) for v in versions], "count": len(versions)})


@router.get("/{persona_id:persona}/versions/{number}", responses=error_responses(401, 404, 422))
async def get_version(persona_id: str,
                      number: Annotated[int, Path(ge=1, le=MAX_VERSION)],
                      principal: CurrentPrincipal,
                      service: PersonaServiceDep) -> VersionPublic:
    return VersionPublic.model_validate(
        (await service.version(principal, persona_id, number)).public())


@router.get("/{persona_id:persona}/diff", responses=error_responses(401, 404, 422))
async def diff_versions(
    persona_id: str, principal: CurrentPrincipal, service: PersonaServiceDep,
    from_: Annotated[int | None, Query(alias="from", ge=1, le=MAX_VERSION)] = None,
    to: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> PersonaDiffPublic:
    current = (await service.get(principal, persona_id)).record.version
    new = to or current
    old = from_ or max(new - 1, 1)
    return PersonaDiffPublic.model_validate(await service.diff(principal, persona_id, old, new))


@router.post("/{persona_id:persona}/rollback", response_model=None,
             responses={200: PERSONA, **error_responses(400, 401, 403, 404, 409, 422)})
async def rollback_persona(persona_id: str, body: PersonaRollback, principal: CurrentPrincipal,
                           service: PersonaServiceDep) -> Response:
    record = await service.rollback(principal, persona_id, body.version,
                                    base_version=body.base_version, note=body.note)
    return record_response(record)


@router.get("/{persona_id:persona}/prompt", responses=error_responses(401, 404, 409))
async def rendered_prompt(persona_id: str, principal: CurrentPrincipal,
                          runtime: RuntimeDep) -> PersonaPromptPublic:
    """The system prompt the current version runs with, as conversations prepare it
    (409 if its template fails to render)."""
    record = (await runtime.personas.get(principal, persona_id)).record
    prepared = await runtime.prepared.prepare_in_thread(record)
    return PersonaPromptPublic(persona_id=persona_id, version=prepared.version,
                               system_prompt=prepared.system_prompt,
                               tokens=prompt_tokens(prepared, runtime.providers))
