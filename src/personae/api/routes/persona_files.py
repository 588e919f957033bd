"""A persona's files over HTTP: its export, its avatar, the assets it names, and a
lorebook attached from a file.

Included after ``persona_versions.router``, so the routes keep the order (and the
OpenAPI document's) one router had."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile

from personae.api.deps import CurrentPrincipal, PersonaServiceDep
from personae.api.routes.personas import PERSONA, based_on_version, record_response
from personae.api.schemas import MAX_VERSION, error_responses
from personae.api.schemas.common import error_response
from personae.api.schemas.personas import PersonaLorebookImported
from personae.personas.assets import AVATAR_MEDIA_TYPES
from personae.personas.lorebook_attach import Mode, attach_lorebook
from personae.personas.schema import SHA256_PATTERN
from personae.personas.transfer import CHARX_MEDIA_TYPE, EXPORT_FORMATS

router = APIRouter(prefix="/personas", tags=["personas"])

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
    responses={200: PERSONA, 415: _UNSUPPORTED,
               **error_responses(400, 401, 403, 404, 409, 413, 422, 428)})
async def put_avatar(persona_id: str, principal: CurrentPrincipal, service: PersonaServiceDep,
                     request: Request) -> Response:
    """Replace the avatar with the image in the body: a new version."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    base = based_on_version(None, request.headers.get("if-match"), accepts_body_version=False)
    record = await service.set_avatar(principal, persona_id, await request.body(), media_type,
                                      base_version=base)
    return record_response(record)


@router.delete("/{persona_id:persona}/avatar", response_model=None,
               openapi_extra={"parameters": [_IF_MATCH]},
               responses={200: PERSONA, **error_responses(400, 401, 403, 404, 409, 422, 428)})
async def delete_avatar(persona_id: str, principal: CurrentPrincipal,
                        service: PersonaServiceDep, request: Request) -> Response:
    """Remove the avatar (image and external URL): a new version."""
    base = based_on_version(None, request.headers.get("if-match"), accepts_body_version=False)
    return record_response(await service.remove_avatar(principal, persona_id,
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
    base = based_on_version(None, request.headers.get("if-match"), accepts_body_version=False)
    attached = await attach_lorebook(service, principal, persona_id, await file.read(),
                                     filename=file.filename, mode=mode, base_version=base)
    return PersonaLorebookImported.model_validate({
        "persona": attached.record.public(), "entries_added": attached.entries_added,
        "warnings": attached.warnings, "source_format": attached.source_format})
