"""Request bodies. Definitions stay loose dicts here: ``parse_persona`` validates them,
so API, CLI and file sync report problems with the same field paths."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personae.personas.schema import Status, Visibility

DEFINITION_DOC = ("A persona definition: id, name, description, language, system_prompt, "
                  "greetings, traits, ... (see the README). Unknown top-level keys become "
                  "trait blocks.")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PersonaCreate(_Body):
    definition: dict[str, Any] = Field(description=DEFINITION_DOC)
    visibility: Visibility = Visibility.private
    global_: bool = Field(default=False, alias="global",
                          description="a global persona (admins only); otherwise yours")
    note: str = ""


class PersonaReplace(_Body):
    definition: dict[str, Any] = Field(description=DEFINITION_DOC)
    base_version: int | None = Field(default=None, ge=1,
                                     description="the version this change is based on "
                                                 "(or send If-Match)")
    visibility: Visibility | None = None
    note: str = ""


class PersonaPatch(_Body):
    definition: dict[str, Any] | None = Field(
        default=None, description="fields to change (JSON merge patch: null removes)")
    base_version: int | None = Field(default=None, ge=1)
    visibility: Visibility | None = None
    note: str = ""


class ArchiveRequest(_Body):
    base_version: int | None = Field(default=None, ge=1)
    status: Status | None = Field(default=None, description="restore only: draft or active")
    note: str = ""


class RollbackRequest(_Body):
    version: int = Field(ge=1, description="the version to bring back")
    base_version: int | None = Field(default=None, ge=1)
    note: str = ""
