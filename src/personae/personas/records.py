"""Plain records the persona store returns and the service hands to adapters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from personae.personas.schema import PersonaDefinition, Status, Visibility, hash_data


@dataclass(frozen=True, slots=True)
class PersonaRecord:
    """A persona as stored: its current definition plus ownership and version."""

    id: str
    owner_id: str | None
    visibility: Visibility
    status: Status
    version: int
    definition: PersonaDefinition
    definition_hash: str
    created_at: datetime
    updated_at: datetime

    @property
    def is_global(self) -> bool:
        return self.owner_id is None

    def public(self) -> dict[str, Any]:
        """The API representation (also what the read cache serialises once)."""
        return {
            "id": self.id,
            "version": self.version,
            "owner": self.owner_id,
            "scope": "global" if self.is_global else "user",
            "visibility": self.visibility.value,
            "status": self.status.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "definition": self.definition.to_data(),
        }


@dataclass(frozen=True, slots=True)
class PersonaSummary:
    """One row of a persona listing (no full definition: listings stay cheap)."""

    id: str
    name: str
    display_name: str | None
    language: str
    status: Status
    visibility: Visibility
    owner_id: str | None
    version: int
    tags: list[str]
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "language": self.language,
            "status": self.status.value,
            "visibility": self.visibility.value,
            "owner": self.owner_id,
            "scope": "global" if self.owner_id is None else "user",
            "version": self.version,
            "tags": self.tags,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class VersionRecord:
    persona_id: str
    number: int
    definition: PersonaDefinition
    definition_hash: str
    author: str
    note: str
    created_at: datetime

    def public(self, *, with_definition: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "persona_id": self.persona_id,
            "version": self.number,
            "author": self.author,
            "note": self.note,
            "created_at": self.created_at.isoformat(),
            "definition_hash": self.definition_hash,
        }
        if with_definition:
            data["definition"] = self.definition.to_data()
        return data


# Listing orders: by name, newest first (created), last changed first, or most turns
# first (the turns counted in the persona's figures, every version and day).
Sort = Literal["name", "newest", "updated", "most_used"]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters for listing personas; ``viewer_id`` None with ``admin`` sees everything."""

    viewer_id: str | None
    admin: bool = False
    tag: str | None = None
    language: str | None = None
    status: Status | None = None
    owner: str | None = None  # a user id, or "global"
    text: str | None = None
    include_archived: bool = False
    sort: Sort = "name"
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A version to write: the definition and who wrote it, and why.

    ``data`` and ``digest`` are computed once here; a bulk sync writes thousands.
    """

    definition: PersonaDefinition
    author: str
    note: str = ""
    source_hash: str | None = None
    visibility: Visibility | None = None
    # The bytes of files this version names that may not be stored yet (sha256 -> data).
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    data: dict[str, Any] = field(init=False)
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", self.definition.to_data())
        object.__setattr__(self, "digest", hash_data(self.data))


@dataclass(frozen=True, slots=True)
class SourceState:
    """What sync needs to know about a stored persona to skip unchanged files."""

    id: str
    owner_id: str | None
    version: int
    definition_hash: str
    source_hash: str | None


@dataclass(slots=True)
class Page:
    data: list[Any] = field(default_factory=list)
    count: int = 0
