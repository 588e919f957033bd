"""``/v1/personas``: the registry over HTTP (thin: parse, authorise via the service, shape).

Here: the persona id in a path, how one persona is answered (its bytes and ETag), and the
persona itself (read, list, create, import, change, archive, restore, delete). Its history
is in ``persona_versions``, its files in ``persona_files``; ``api/app.py`` includes the
three routers one after another, in the order their routes are tried and documented."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import (
    APIRouter,
    File,
    Form,
    Header,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from starlette.convertors import Convertor, register_url_convertor

from personae.api.deps import CurrentPrincipal, PersonaServiceDep
from personae.api.schemas import (
    MAX_OFFSET,
    MAX_VERSION,
    PersonaCreate,
    PersonaPublic,
    PersonaReplace,
    PersonasImported,
    PersonasPublic,
    PersonaStatusChange,
    PersonaUpdate,
    error_responses,
)
from personae.errors import InvalidInput, PreconditionRequired
from personae.personas.language import normalize_language
from personae.personas.records import PersonaRecord, Sort
from personae.personas.registry import serialise
from personae.personas.schema import RESERVED_NAMES, Status, Visibility
from personae.personas.transfer import definition_from_text, import_bytes


class PersonaIdConvertor(Convertor[str]):
    """A persona id in a path: ``tina`` or ``alice/tutor`` (at most one '/'), and never one
    whose last part is a reserved word, so ``alice/tutor/versions`` is that persona's
    versions and ``DELETE .../tutor/diff`` is a 405, not a lookup of a persona
    ``tutor/diff``. Anything else is passed on: an unknown id is the service's 404."""

    regex = rf"[^/]+(?:/(?!(?:{'|'.join(sorted(RESERVED_NAMES))})$)[^/]+)?"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("persona", PersonaIdConvertor())  # {persona_id:persona}
router = APIRouter(prefix="/personas", tags=["personas"])
JSON = "application/json"

# Reads and writes of one persona answer with its bytes serialised once (see
# ``personas.registry``) and an ETag: documented here, not put through a response model.
_ETAG = {"ETag": {"description": "the persona's version, for If-Match and If-None-Match",
                  "schema": {"type": "string"}}}
PERSONA = {"model": PersonaPublic, "headers": _ETAG}


def record_response(record: PersonaRecord, status_code: int = 200) -> Response:
    """One persona's answer: its bytes serialised once, with its version as ETag."""
    cached = serialise(record)
    return Response(cached.body, status_code, media_type=JSON, headers={"ETag": cached.etag})


def based_on_version(body_version: int | None, if_match: str | None, *,
                     accepts_body_version: bool = True) -> int:
    """The version a write is based on: the body's ``base_version`` or ``If-Match``."""
    if body_version is not None:
        return body_version
    if if_match:
        try:
            version = int(if_match.strip().removeprefix("W/").strip('"'))
        except ValueError:
            version = 0
        if not 1 <= version <= MAX_VERSION:
            raise InvalidInput(f"If-Match must be a persona version such as \"3\" "
                               f"(1 to {MAX_VERSION}), got {if_match!r}")
        return version
    where = ("'base_version' in the body or an If-Match header" if accepts_body_version
             else "an If-Match header")
    raise PreconditionRequired(f"say which version your change is based on: {where} "
                               "(the ETag from GET)")


# First: the hot, cached read (routes are tried in order; each one tried before costs
# every GET). It cannot shadow the suffixed routes (below, and in the routers included
# after this one): the id convertor never reads ``alice/tutor/versions`` or
# ``tina/versions`` as an id. ("GET /import" is no route.)
@router.get("/{persona_id:persona}", response_model=None, responses={
    200: PERSONA, 304: {"description": "Not modified: If-None-Match names the current version",
                        "headers": _ETAG},
    **error_responses(401, 404)})
async def get_persona(persona_id: str, principal: CurrentPrincipal, request: Request
                      ) -> Response:
    # The service is read off app state, not injected: one dependency less on the hot path.
    cached = await request.app.state.runtime.personas.get(principal, persona_id)
    if request.headers.get("if-none-match") == cached.etag:
        return Response(status_code=304, headers={"ETag": cached.etag})
    return Response(cached.body, media_type=JSON, headers={"ETag": cached.etag})


@router.get("", responses=error_responses(400, 401, 422))
async def list_personas(
    principal: CurrentPrincipal, service: PersonaServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    tag: str | None = None, language: str | None = None, status: Status | None = None,
    owner: Annotated[str | None, Query(description="'me', 'global' or a user id")] = None,
    q: Annotated[str | None, Query(description="text in id, name, description, tags")] = None,
    include_archived: bool = False,
    sort: Annotated[Sort, Query(description="name, newest (created), updated (last "
                                            "changed) or most_used (most turns)")] = "name",
) -> PersonasPublic:
    if language:
        try:
            language = normalize_language(language)
        except ValueError as exc:
            raise InvalidInput(f"language: {exc}") from None
    page = await service.list(
        principal, limit=limit, offset=offset, tag=tag, language=language, status=status,
        owner=principal.user_id if owner == "me" else owner, text=q,
        include_archived=include_archived, sort=sort)
    return PersonasPublic.model_validate({
        "data": [s.public() for s in page.data], "count": page.count, "limit": limit,
        "offset": offset})


@router.post("", status_code=201, response_model=None,
             responses={201: PERSONA, **error_responses(400, 401, 403, 409, 422)})
async def create_persona(body: PersonaCreate, principal: CurrentPrincipal,
                         service: PersonaServiceDep) -> Response:
    record = await service.create(principal, body.definition, visibility=body.visibility,
                                  global_scope=body.global_, note=body.note)
    return record_response(record, 201)


@router.post("/import", status_code=201, responses=error_responses(400, 401, 403, 409, 422))
async def import_persona(
    principal: CurrentPrincipal, service: PersonaServiceDep,
    file: Annotated[UploadFile, File(description="persona JSON/YAML or Character Card "
                                                 "(JSON, PNG, CHARX)")],
    id: Annotated[str | None, Form(description="id for the new persona")] = None,
    visibility: Annotated[Visibility, Form()] = Visibility.private,
    global_: Annotated[bool, Form(alias="global")] = False,
) -> PersonasImported:
    # Parsing a card and validating its personas is CPU work (inflating, rendering a
    # template): in a worker thread, so the event loop keeps serving.
    imported = await asyncio.to_thread(import_bytes, await file.read(), file.filename, id)
    records = await service.create_many(principal, imported.definitions, visibility=visibility,
                                        global_scope=global_, blobs=imported.blobs,
                                        note=f"imported from {file.filename}")
    created = [record.public() for record in records]
    return PersonasImported.model_validate({
        "data": created, "count": len(created), "warnings": imported.warnings,
        "source_format": imported.source_format})


@router.put("/{persona_id:persona}", response_model=None,
            responses={200: PERSONA, **error_responses(400, 401, 403, 404, 409, 422, 428)})
async def replace_persona(persona_id: str, body: PersonaReplace, principal: CurrentPrincipal,
                          service: PersonaServiceDep,
                          if_match: Annotated[str | None, Header()] = None) -> Response:
    definition = body.definition if body.definition is not None else \
        await asyncio.to_thread(definition_from_text, body.definition_yaml or "")
    record = await service.replace(
        principal, persona_id, definition,
        base_version=based_on_version(body.base_version, if_match), note=body.note,
        visibility=body.visibility)
    return record_response(record)


@router.patch("/{persona_id:persona}", response_model=None,
              responses={200: PERSONA, **error_responses(400, 401, 403, 404, 409, 422, 428)})
async def patch_persona(persona_id: str, body: PersonaUpdate, principal: CurrentPrincipal,
                        service: PersonaServiceDep,
                        if_match: Annotated[str | None, Header()] = None) -> Response:
    record = await service.patch(
        principal, persona_id, body.definition or {},
        base_version=based_on_version(body.base_version, if_match), note=body.note,
        visibility=body.visibility)
    return record_response(record)


@router.delete("/{persona_id:persona}", response_model=None, responses={
    200: {**PERSONA, "description": "Archived (the default)"},
    204: {"description": "Deleted for good (hard=true)"},
    **error_responses(401, 403, 404, 409, 422)})
async def delete_persona(
    persona_id: str, principal: CurrentPrincipal, service: PersonaServiceDep,
    hard: Annotated[bool, Query(description="delete for good (admins only)")] = False,
) -> Response:
    if hard:
        await service.hard_delete(principal, persona_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return record_response(await service.set_status(principal, persona_id, Status.archived))


@router.post("/{persona_id:persona}/archive", response_model=None,
             responses={200: PERSONA, **error_responses(400, 401, 403, 404, 409, 422)})
async def archive_persona(persona_id: str, principal: CurrentPrincipal,
                          service: PersonaServiceDep, body: PersonaStatusChange | None = None
                          ) -> Response:
    body = body or PersonaStatusChange()
    record = await service.set_status(principal, persona_id, Status.archived,
                                      base_version=body.base_version, note=body.note)
    return record_response(record)


@router.post("/{persona_id:persona}/restore", response_model=None,
             responses={200: PERSONA, **error_responses(400, 401, 403, 404, 409, 422)})
async def restore_persona(persona_id: str, principal: CurrentPrincipal,
                          service: PersonaServiceDep, body: PersonaStatusChange | None = None
                          ) -> Response:
    body = body or PersonaStatusChange()
    record = await service.set_status(principal, persona_id, body.status or Status.active,
                                      base_version=body.base_version, note=body.note)
    return record_response(record)

