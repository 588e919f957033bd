"""The persona definition: one record that chat, voice, panels and writing all read.

A definition is plain data. Named fields cover what every channel needs; ``traits``
is an open mapping of named blocks (``consultation_style``, ``pricing_model``, ...)
that the prompt builder renders generically, and ``extensions`` keeps data for other
tools (Character Card fields we do not model) verbatim. Use :func:`parse_persona`
(in ``validation``) to build one from loose input such as a file or a request body.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from personae.auth.principal import USER_NAME_PATTERN
from personae.personas.language import normalize_language
from personae.personas.template import compile_template

# A persona id is a slug: plain for a global persona (``tina-kulkarni``), or
# ``<owner's user name>/<slug>`` for a user's (``alice/tutor``), as model hubs name
# models. Neither part can hold '.', so an id is never a path that leaves a folder.
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
SLUG_PATTERN = rf"^(?:{USER_NAME_PATTERN}/)?{NAME_PATTERN}$"
ID_MAX_LENGTH = 64
PersonaId = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=ID_MAX_LENGTH)]
# Words the API puts after an id (``/v1/personas/{id}/versions``): no persona is named so.
RESERVED_NAMES = frozenset({"versions", "prompt", "export", "archive", "restore",
                            "rollback", "diff", "import"})
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
JSONValue = Any


class Status(StrEnum):
    draft = "draft"
    active = "active"
    archived = "archived"


class Visibility(StrEnum):
    private = "private"
    public = "public"


class LanguagePolicy(StrEnum):
    """How strictly the persona keeps to its language."""

    strict = "strict"  # always answer in the persona's language
    prefer = "prefer"  # the persona's language unless the user asks for another
    mirror = "mirror"  # answer in the language the user writes in


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Voice(_Strict):
    provider: str | None = None
    voice_id: str | None = None
    speed: float = Field(default=1.0, ge=0.25, le=4.0)


class ModelSettings(_Strict):
    provider: str | None = None
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)


class ExampleExchange(_Strict):
    """One user line and the persona's reply, shown to the model as a style example."""

    user: NonEmpty
    reply: NonEmpty


class KnowledgeItem(_Strict):
    """A piece of the persona's own content, retrieved into the prompt when relevant."""

    id: str | None = None
    title: str | None = None
    content: NonEmpty
    tags: list[str] = Field(default_factory=list)
    source: str | None = None


class PersonaDefinition(_Strict):
    """The full, versioned definition of a persona."""

    id: PersonaId
    name: NonEmpty
    display_name: str | None = None
    description: str = ""
    avatar: str | None = None
    tags: list[NonEmpty] = Field(default_factory=list)
    role: str | None = None
    speciality: str | None = None
    language: str = "en"
    language_policy: LanguagePolicy = LanguagePolicy.strict
    gender: str | None = None
    voice: Voice = Field(default_factory=Voice)
    system_prompt: str = ""
    prompt_template: str | None = None
    greetings: list[NonEmpty] = Field(default_factory=list)
    example_dialogues: list[ExampleExchange] = Field(default_factory=list)
    expertise_keywords: list[NonEmpty] = Field(default_factory=list)
    knowledge: list[KnowledgeItem] = Field(default_factory=list)
    model: ModelSettings = Field(default_factory=ModelSettings)
    status: Status = Status.active
    traits: dict[str, JSONValue] = Field(default_factory=dict)
    extensions: dict[str, JSONValue] = Field(default_factory=dict)

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        return normalize_language(value)

    @field_validator("prompt_template")
    @classmethod
    def _template_compiles(cls, value: str | None) -> str | None:
        if value:
            compile_template(value)
        return value

    @field_validator("tags", "expertise_keywords")
    @classmethod
    def _dedupe(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("traits")
    @classmethod
    def _trait_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_ \-]{0,63}", key):
                raise ValueError(
                    f"trait name {key!r} must start with a letter and use letters, "
                    "digits, '_', '-' or spaces (at most 64 characters)"
                )
        return value

    @property
    def shown_name(self) -> str:
        return self.display_name or self.name

    @property
    def greeting(self) -> str | None:
        return self.greetings[0] if self.greetings else None

    def to_data(self) -> dict[str, Any]:
        """Compact JSON-ready form: defaults left out, key order preserved."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def content_hash(self) -> str:
        """Hash of the content. Key order counts: trait blocks render in that order."""
        return hash_data(self.to_data())


def split_id(persona_id: str) -> tuple[str | None, str]:
    """``alice/tutor`` -> ``("alice", "tutor")``; a global ``tina`` -> ``(None, "tina")``."""
    namespace, sep, name = persona_id.rpartition("/")
    return (namespace if sep else None), name


def hash_data(data: dict[str, Any]) -> str:
    """The content hash of a definition's ``to_data()`` form."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


# Field names a definition accepts, used to spot typos among unknown keys.
DEFINITION_FIELDS: frozenset[str] = frozenset(PersonaDefinition.model_fields)
