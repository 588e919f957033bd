"""Persona bodies and responses. Definitions stay loose dicts here: ``parse_persona``
validates them, so API, CLI and file sync report problems with the same field paths."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from personae.api.schemas.common import Body, ListPage, OffsetPage, Public, Timestamp
from personae.personas.schema import Status, Visibility

DEFINITION_DOC = ("A persona definition: id, name, description, language, system_prompt, "
                  "greetings, traits, ... (see the README). Unknown top-level keys become "
                  "trait blocks.")
Scope = Literal["global", "user"]


class PersonaCreate(Body):
    definition: dict[str, Any] = Field(description=DEFINITION_DOC)
    visibility: Visibility = Visibility.private
    global_: bool = Field(default=False, alias="global",
                          description="a global persona (admins only); otherwise yours")
    note: str = ""


class PersonaReplace(Body):
    """``PUT``: the whole definition; fields left out are removed."""

    definition: dict[str, Any] = Field(description=DEFINITION_DOC)
    base_version: int | None = Field(default=None, ge=1,
                                     description="the version this change is based on "
                                                 "(or send If-Match)")
    visibility: Visibility | None = None
    note: str = ""


class PersonaUpdate(Body):
    """``PATCH``: only the fields to change."""

    definition: dict[str, Any] | None = Field(
        default=None, description="fields to change (JSON merge patch: null removes)")
    base_version: int | None = Field(default=None, ge=1)
    visibility: Visibility | None = None
    note: str = ""


class PersonaStatusChange(Body):
    base_version: int | None = Field(default=None, ge=1)
    status: Status | None = Field(default=None, description="restore only: draft or active")
    note: str = ""


class PersonaRollback(Body):
    version: int = Field(ge=1, description="the version to bring back")
    base_version: int | None = Field(default=None, ge=1)
    note: str = ""


class PersonaPublic(Public):
    """A persona with its current definition; its ``version`` is also the ETag."""

    id: str
    version: int
    owner: str | None = Field(description="the owner's user id; null for a global persona")
    scope: Scope
    visibility: Visibility
    status: Status
    created_at: Timestamp
    updated_at: Timestamp
    definition: dict[str, Any] = Field(description="the full, normalised definition")


class PersonaSummaryPublic(Public):
    """One row of a listing: no definition, so listings stay cheap."""

    id: str
    name: str
    display_name: str | None
    language: str
    status: Status
    visibility: Visibility
    owner: str | None
    scope: Scope
    version: int
    tags: list[str]
    updated_at: Timestamp


class PersonasPublic(OffsetPage[PersonaSummaryPublic]):
    pass


class PersonasImported(ListPage[PersonaPublic]):
    """The personas one uploaded file created (all or none)."""

    warnings: list[str] = Field(description="what the import could not carry over")
    source_format: str = Field(description="what the file was: persona, or a card format")


class VersionSummaryPublic(Public):
    persona_id: str
    version: int
    author: str
    note: str
    created_at: Timestamp
    definition_hash: str


class VersionPublic(VersionSummaryPublic):
    definition: dict[str, Any]


class VersionsPublic(ListPage[VersionSummaryPublic]):
    pass


class PersonaDiffPublic(Public):
    persona_id: str
    from_: int = Field(alias="from")
    to: int
    changed_fields: list[str] = Field(description="top-level definition fields that differ")
    patch: list[dict[str, Any]] = Field(description="RFC 6902 JSON Patch from 'from' to 'to'")


class PersonaPromptPublic(Public):
    persona_id: str
    version: int
    system_prompt: str = Field(description="the system prompt built from the definition")
