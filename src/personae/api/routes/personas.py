"""``/v1/personas``: the registry over HTTP (thin: parse, authorise via the service, shape)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import (
    APIRouter,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from starlette.convertors import Convertor, register_url_convertor

from personae.api.deps import CurrentPrincipal, PersonaServiceDep, RuntimeDep
from personae.api.schemas import (
    MAX_OFFSET,
    MAX_VERSION,
    PersonaCreate,
    PersonaDiffPublic,
    PersonaPromptPublic,
    PersonaPublic,
    PersonaReplace,
    PersonaRollback,
    PersonasImported,
    PersonasPublic,
    PersonaStatusChange,
    PersonaUpdate,
    VersionPublic,
    VersionsPublic,
    error_responses,
)
from personae.api.schemas.common import error_response
from personae.api.schemas.personas import PersonaLorebookImported
from personae.errors import InvalidInput, PreconditionRequired
from personae.personas.assets import AVATAR_MEDIA_TYPES
from personae.personas.language import normalize_language
from personae.personas.lorebook_attach import Mode, attach_lorebook
from personae.personas.prepared import prompt_tokens
from personae.personas.records import PersonaRecord, Sort
from personae.personas.registry import serialise
from personae.personas.schema import RESERVED_NAMES, SHA256_PATTERN, Status, Visibility
from personae.personas.transfer import (
    CHARX_MEDIA_TYPE,
    EXPORT_FORMATS,
    definition_from_text,
    import_bytes,
)


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
_PERSONA = {"model": PersonaPublic, "headers": _ETAG}
_EXPORT_TYPES = {
    "application/json": {"schema": {"type": "object", "description": "the persona file "
                                    "(json) or a Character Card V3 (card)"}},
    "application/yaml": {"schema": {"type": "object", "description": "the persona file"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    CHARX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
# A persona's files: addressed by content, so a versioned or hashed URL never changes.
_FILE_HEADERS = {
    "ETag": {"description": "the file's SHA-256, for If-None-Match",
             "schema": {"type": "string"}},
    "Cache-Control": {"description": "private: the file is as visible as its persona",
                      "schema": {"type": "string"}}}
_NOT_MODIFIED = {"description": "Not modified: If-None-Match names this file",
                 "headers": _FILE_HEADERS}
_AVATAR_TYPES = {media_type: _BINARY for media_type in (*AVATAR_MEDIA_TYPES, "image/bmp")}
_ASSET_TYPES = {media_type: _BINARY for media_type in
                ("image/*", "audio/*", "application/octet-stream")}
_CURRENT_MAX_AGE = 60  # the current avatar may change with the next version
_FIXED_MAX_AGE = 31_536_000  # a given version's, or a file by hash, never does
_IF_MATCH = {"name": "If-Match", "in": "header", "required": True,
             "description": "the persona's version this change is based on (its ETag); "
                            "428 without it",
             "schema": {"type": "string", "pattern": '^"[1-9][0-9]{0,8}"$'}}
_UNSUPPORTED = error_response(415, "The body is not a PNG, JPEG, WebP or GIF image "
                                   "(unsupported_media_type)")
_VERSION_QUERY = Query(ge=1, le=MAX_VERSION, description="a version (default: the current)")


def _record_response(record: PersonaRecord, status_code: int = 200) -> Response:
    cached = serialise(record)
    return Response(cached.body, status_code, media_type=JSON, headers={"ETag": cached.etag})


def _file_response(request: Request, sha256: str, media_type: str, data: bytes,
                   max_age: int) -> Response:
    """A persona's file with its hash as ETag (304 when the client has it)."""
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={max_age}",
               "X-Content-Type-Options": "nosniff"}
    given = request.headers.get("if-none-match", "")
    if etag in (tag.strip().removeprefix("W/") for tag in given.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


def _base_version(body_version: int | None, if_match: str | None, *,
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
# every GET). It cannot shadow the suffixed routes below: the id convertor never reads
# ``alice/tutor/versions`` or ``tina/versions`` as an id. ("GET /import" is no route.)
@router.get("/{persona_id:persona}", response_model=None, responses={
    200: _PERSONA, 304: {"description": "Not modified: If-None-Match names the current version",
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
             responses={201: _PERSONA, **error_responses(400, 401, 403, 409, 422)})
async def create_persona(body: PersonaCreate, principal: CurrentPrincipal,
                         service: PersonaServiceDep) -> Response:
    record = await service.create(principal, body.definition, visibility=body.visibility,
                                  global_scope=body.global_, note=body.note)
    return _record_response(record, 201)


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
            responses={200: _PERSONA, **error_responses(400, 401, 403, 404, 409, 422, 428)})
async def replace_persona(persona_id: str, body: PersonaReplace, principal: CurrentPrincipal,
                          service: PersonaServiceDep,
                          if_match: Annotated[str | None, Header()] = None) -> Response:
    definition = body.definition if body.definition is not None else \
        await asyncio.to_thread(definition_from_text, body.definition_yaml or "")
    record = await service.replace(
        principal, persona_id, definition,
        base_version=_base_version(body.base_version, if_match), note=body.note,
        visibility=body.visibility)
    return _record_response(record)


@router.patch("/{persona_id:persona}", response_model=None,
              responses={200: _PERSONA, **error_responses(400, 401, 403, 404, 409, 422, 428)})
async def patch_persona(persona_id: str, body: PersonaUpdate, principal: CurrentPrincipal,
                        service: PersonaServiceDep,
                        if_match: Annotated[str | None, Header()] = None) -> Response:
    record = await service.patch(
        principal, persona_id, body.definition or {},
        base_version=_base_version(body.base_version, if_match), note=body.note,
        visibility=body.visibility)
    return _record_response(record)


@router.delete("/{persona_id:persona}", response_model=None, responses={
    200: {**_PERSONA, "description": "Archived (the default)"},
    204: {"description": "Deleted for good (hard=true)"},
    **error_responses(401, 403, 404, 409, 422)})
async def delete_persona(
    persona_id: str, principal: CurrentPrincipal, service: PersonaServiceDep,
    hard: Annotated[bool, Query(description="delete for good (admins only)")] = False,
) -> Response:
    if hard:
        await service.hard_delete(principal, persona_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _record_response(await service.set_status(principal, persona_id, Status.archived))


@router.post("/{persona_id:persona}/archive", response_model=None,
             responses={200: _PERSONA, **error_responses(400, 401, 403, 404, 409, 422)})
async def archive_persona(persona_id: str, principal: CurrentPrincipal,
                          service: PersonaServiceDep, body: PersonaStatusChange | None = None
                          ) -> Response:
    body = body or PersonaStatusChange()
    record = await service.set_status(principal, persona_id, Status.archived,
                                      base_version=body.base_version, note=body.note)
    return _record_response(record)


@router.post("/{persona_id:persona}/restore", response_model=None,
             responses={200: _PERSONA, **error_responses(400, 401, 403, 404, 409, 422)})
async def restore_persona(persona_id: str, principal: CurrentPrincipal,
                          service: PersonaServiceDep, body: PersonaStatusChange | None = None
                          ) -> Response:
    body = body or PersonaStatusChange()
    record = await service.set_status(principal, persona_id, body.status or Status.active,
                                      base_version=body.base_version, note=body.note)
    return _record_response(record)


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
             responses={200: _PERSONA, **error_responses(400, 401, 403, 404, 409, 422)})
async def rollback_persona(persona_id: str, body: PersonaRollback, principal: CurrentPrincipal,
                           service: PersonaServiceDep) -> Response:
    record = await service.rollback(principal, persona_id, body.version,
                                    base_version=body.base_version, note=body.note)
    return _record_response(record)


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


@router.get("/{persona_id:persona}/export", response_model=None, response_class=Response,
            responses={
    200: {"description": "The persona file (json, yaml), or a Character Card with its files "
                         "(card: JSON with data: URIs; card-png: on the avatar; charx: a zip)",
          "content": _EXPORT_TYPES},
    **error_responses(400, 401, 404)})
async def export_persona(
    persona_id: str, principal: CurrentPrincipal, service: PersonaServiceDep,
    format: Annotated[str, Query(description=" | ".join(EXPORT_FORMATS),
                                 json_schema_extra={"enum": list(EXPORT_FORMATS)})] = "json",
) -> Response:
    content, media_type, filename = await service.export(principal, persona_id, format)
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/{persona_id:persona}/avatar", response_model=None, response_class=Response,
            responses={
    200: {"description": "The avatar image", "content": _AVATAR_TYPES,
          "headers": _FILE_HEADERS},
    304: _NOT_MODIFIED, **error_responses(401, 404, 422)})
async def get_avatar(persona_id: str, principal: CurrentPrincipal, service: PersonaServiceDep,
                     request: Request,
                     version: Annotated[int | None, _VERSION_QUERY] = None) -> Response:
    """The persona's avatar (404 if it has none; ``details.url`` names an external one)."""
    asset, media_type, data = await service.avatar(principal, persona_id, version)
    max_age = _CURRENT_MAX_AGE if version is None else _FIXED_MAX_AGE
    return _file_response(request, asset.sha256, media_type, data, max_age)


@router.put("/{persona_id:persona}/avatar", response_model=None, openapi_extra={
    "parameters": [_IF_MATCH],
    "requestBody": {"required": True, "content": {t: _BINARY for t in AVATAR_MEDIA_TYPES}}},
    responses={200: _PERSONA, 415: _UNSUPPORTED,
               **error_responses(400, 401, 403, 404, 409, 413, 422, 428)})
async def put_avatar(persona_id: str, principal: CurrentPrincipal, service: PersonaServiceDep,
                     request: Request) -> Response:
    """Replace the avatar with the image in the body: a new version."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    base = _base_version(None, request.headers.get("if-match"), accepts_body_version=False)
    record = await service.set_avatar(principal, persona_id, await request.body(), media_type,
                                      base_version=base)
    return _record_response(record)


@router.delete("/{persona_id:persona}/avatar", response_model=None,
               openapi_extra={"parameters": [_IF_MATCH]},
               responses={200: _PERSONA, **error_responses(400, 401, 403, 404, 409, 422, 428)})
async def delete_avatar(persona_id: str, principal: CurrentPrincipal,
                        service: PersonaServiceDep, request: Request) -> Response:
    """Remove the avatar (image and external URL): a new version."""
    base = _base_version(None, request.headers.get("if-match"), accepts_body_version=False)
    return _record_response(await service.remove_avatar(principal, persona_id,
                                                        base_version=base))


@router.get("/{persona_id:persona}/assets/{sha256}", response_model=None,
            response_class=Response, responses={
    200: {"description": "The file", "content": _ASSET_TYPES, "headers": _FILE_HEADERS},
    304: _NOT_MODIFIED, **error_responses(401, 404, 422)})
async def get_asset(persona_id: str, sha256: Annotated[str, Path(pattern=SHA256_PATTERN)],
                    principal: CurrentPrincipal, service: PersonaServiceDep, request: Request,
                    version: Annotated[int | None, _VERSION_QUERY] = None) -> Response:
    """A file the persona's (current or given) version names, by its SHA-256."""
    asset, media_type, data = await service.asset(principal, persona_id, sha256, version)
    return _file_response(request, asset.sha256, media_type, data, _FIXED_MAX_AGE)


@router.post("/{persona_id:persona}/lorebook", openapi_extra={"parameters": [_IF_MATCH]},
             responses=error_responses(400, 401, 403, 404, 409, 422, 428))
async def import_lorebook(
    persona_id: str, principal: CurrentPrincipal, service: PersonaServiceDep, request: Request,
    file: Annotated[UploadFile, File(description="SillyTavern World Info JSON, or a "
                                                 "Character Card character_book (JSON)")],
    mode: Annotated[Mode, Form(description="append to the persona's lore entries, or "
                                           "replace them (plain knowledge is kept)")] = "append",
) -> PersonaLorebookImported:
    """Attach a lorebook to a persona as lore entries: a new version."""
    base = _base_version(None, request.headers.get("if-match"), accepts_body_version=False)
    attached = await attach_lorebook(service, principal, persona_id, await file.read(),
                                     filename=file.filename, mode=mode, base_version=base)
    return PersonaLorebookImported.model_validate({
        "persona": attached.record.public(), "entries_added": attached.entries_added,
        "warnings": attached.warnings, "source_format": attached.source_format})
