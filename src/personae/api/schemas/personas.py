"""Persona bodies and responses. Definitions stay loose dicts here: ``parse_persona``
validates them, so API, CLI and file sync report problems with the same field paths."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.config import JsonDict

from personae.api.schemas.common import (
    MAX_VERSION,
    NOT_BLANK,
    Body,
    ListPage,
    OffsetPage,
    Public,
    Timestamp,
    WholeNumber,
    also_required,
)
from personae.personas.schema import Status, Visibility

DEFINITION_DOC = ("A persona definition: id, name, description, language, system_prompt, "
                  "greetings, traits, ... (see the README). Unknown top-level keys become "
                  "trait blocks. 'name' is required; the id, if left out, is made from it.")
# What the document can say of a whole definition; the rest (a known language, a
# template that renders, ...) the persona service checks, naming each field (422).
WHOLE_DEFINITION: JsonDict = {"required": ["name"], "properties": {"name": {
    "type": "string", "minLength": 1, "pattern": NOT_BLANK,
    "description": "the persona's name, not blank"}}}
BASE_VERSION_DOC = ("the version this change is based on; required, unless an If-Match "
                    "header names it (428 when neither does)")
Scope = Literal["global", "user"]
MAX_DEFINITION_TEXT = 1_000_000  # characters of a definition given as a persona file
Version = Annotated[WholeNumber, Field(ge=1, le=MAX_VERSION), WithJsonSchema(
    {"type": "integer", "minimum": 1, "maximum": MAX_VERSION})]


class PersonaCreate(Body):
    definition: dict[str, Any] = Field(description=DEFINITION_DOC,
                                       json_schema_extra=WHOLE_DEFINITION)
    visibility: Visibility = Visibility.private
    global_: bool = Field(default=False, alias="global", strict=True,
                          description="a global persona (admins only); otherwise yours")
    note: str = ""


class PersonaReplace(Body):
    """``PUT``: the whole definition; fields left out are removed. Given either as
    ``definition`` or as the text of a persona file (``definition_yaml``)."""

    model_config = ConfigDict(json_schema_extra=also_required("base_version"))
    definition: Annotated[dict[str, Any] | None, WithJsonSchema({"type": "object"})] = Field(
        default=None, description=DEFINITION_DOC + " Required unless definition_yaml is given.",
        json_schema_extra=WHOLE_DEFINITION)
    definition_yaml: str | None = Field(
        default=None, max_length=MAX_DEFINITION_TEXT,
        description="instead of definition: the whole definition as a persona file's text "
                    "(YAML, or JSON), as the export's yaml format writes it")
    base_version: Version | None = Field(default=None,
                                     description=BASE_VERSION_DOC)
    visibility: Visibility | None = None
    note: str = ""


    @model_validator(mode="after")
    def _one_definition(self) -> PersonaReplace:
        if (self.definition is None) == (self.definition_yaml is None):
            raise ValueError("give the definition either as 'definition' or as "
                             "'definition_yaml' (one of them)")
        return self


class PersonaUpdate(Body):
    """``PATCH``: only the fields to change."""

    model_config = ConfigDict(json_schema_extra=also_required("base_version"))
    definition: dict[str, Any] | None = Field(
        default=None, description="fields to change (JSON merge patch: null removes)")
    base_version: Version | None = Field(default=None,
                                     description=BASE_VERSION_DOC)
    visibility: Visibility | None = None
    note: str = ""


class PersonaStatusChange(Body):
    base_version: Version | None = Field(default=None)
    status: Status | None = Field(default=None, description="restore only: draft or active")
    note: str = ""


class PersonaRollback(Body):
    version: Version = Field(description="the version to bring back")
    base_version: Version | None = Field(default=None)
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


class PersonaLorebookImported(Public):
    """A lorebook attached to a persona: the new version, and what the file held."""

    persona: PersonaPublic
    entries_added: int = Field(description="lore entries taken from the file")
    warnings: list[str] = Field(description="what the lorebook holds that is kept but not "
                                            "applied, and what was left out")
    source_format: str = Field(description="world-info or character-book")


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
    lines: list[str] = Field(description="a unified diff of the two versions' persona files "
                                         "(YAML), line by line")


class PersonaPromptPublic(Public):
    persona_id: str
    version: int
    system_prompt: str = Field(description="the system prompt built from the definition")
    tokens: int = Field(description="its length in tokens, by the tokenizer of the model the "
                                    "persona runs on (an estimate until that model is loaded)")
