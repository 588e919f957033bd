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
from typing import Annotated, Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, field_validator
from slugify import slugify

from personae.auth.principal import USER_NAME_PATTERN
from personae.personas.language import normalize_language
from personae.personas.template import compile_template
from personae.personas.writing_block import WritingBlock

# A persona id is a slug: plain for a global persona (``tina-kulkarni``), or
# ``<owner's user name>/<slug>`` for a user's (``alice/tutor``), as model hubs name
# models. Neither part can hold '.', so an id is never a path that leaves a folder.
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
SLUG_PATTERN = rf"^(?:{USER_NAME_PATTERN}/)?{NAME_PATTERN}$"
ID_MAX_LENGTH = 64
PersonaId = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=ID_MAX_LENGTH)]
# Words the API puts after an id (``/v1/personas/{id}/versions``): no persona is named so.
RESERVED_NAMES = frozenset({"versions", "prompt", "export", "archive", "restore",
                            "rollback", "diff", "import", "lorebook", "avatar", "assets",
                            "metrics"})
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


MAX_LORE_KEYS = 100  # keys (and secondary keys) one lore entry may have
MAX_KEY_LENGTH = 500  # characters in one key; also bounds a regular expression key
# Regular-expression keys in one persona: each costs a compile at validation and when
# the version is prepared, so a definition cannot buy seconds of CPU with them.
MAX_REGEX_KEYS = 1000
LoreKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH,
                                           strip_whitespace=True)]
LoreKeys = Annotated[list[LoreKey], Field(max_length=MAX_LORE_KEYS)]
# SillyTavern's selectiveLogic: how secondary keys filter an entry a primary key matched.
SecondaryLogic = Literal["and_any", "and_all", "not_any", "not_all"]
LorePosition = Literal["before_char", "after_char"]
_REGEX_KEY = re.compile(r"^/(.+)/([a-z]*)$", re.DOTALL)


def regex_key(key: str) -> tuple[str, str] | None:
    """``/pattern/flags`` (SillyTavern's way of writing a regular expression key) as
    ``(pattern, flags)``; ``None`` for a plain key."""
    found = _REGEX_KEY.match(key)
    return (found[1], found[2]) if found else None


class KnowledgeItem(_Strict):
    """A piece of the persona's own content.

    A plain item is retrieved into the prompt when relevant (BM25). An item with
    ``keys`` or ``constant`` is a *lore entry* (a Character Card lorebook entry,
    SillyTavern World Info): it is put in the prompt when a key appears in the recent
    messages, or always when constant (see :mod:`personae.personas.lore`). When the
    lore exceeds its token budget, entries of higher ``priority`` are kept first;
    kept entries are placed in ``order`` (lower first).
    """

    id: str | None = None
    title: str | None = None
    content: NonEmpty
    tags: list[str] = Field(default_factory=list)
    source: str | None = None
    keys: LoreKeys = Field(default_factory=list)
    secondary_keys: LoreKeys = Field(default_factory=list)
    selective: bool = False
    secondary_logic: SecondaryLogic = "and_any"
    constant: bool = False
    enabled: bool = True
    order: int = 100
    priority: int = 0
    case_sensitive: bool = False
    whole_words: bool = False
    position: LorePosition = "after_char"
    extensions: dict[str, JSONValue] = Field(default_factory=dict)

    @field_validator("keys", "secondary_keys")
    @classmethod
    def _regex_keys_compile(cls, value: list[str]) -> list[str]:
        for key in value:
            found = regex_key(key)
            if found is None:
                continue
            try:
                regex.compile(found[0], _regex_flags(found[1]))
            except (regex.error, ValueError) as exc:
                raise ValueError(f"{key!r} is not a valid regular expression: {exc}") from None
        return value

    @property
    def is_lore(self) -> bool:
        return bool(self.keys) or self.constant


def _regex_flags(letters: str) -> int:
    """JavaScript regex flags as the ``regex`` module's (``g`` and ``y`` mean nothing here)."""
    flags = regex.V0
    for letter in letters:
        if letter not in "gimsuy":
            raise ValueError(f"unknown flag {letter!r}")
        flags |= {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL}.get(letter, 0)
    return flags


def compile_regex_key(key: str) -> regex.Pattern[str] | None:
    """The compiled pattern of a ``/pattern/flags`` key; ``None`` for a plain key or
    one that does not compile."""
    found = regex_key(key)
    if found is None:
        return None
    try:
        return regex.compile(found[0], _regex_flags(found[1]))
    except (regex.error, ValueError):
        return None


class LorebookSettings(_Strict):
    """How a persona's lore entries are scanned (a card's ``character_book`` settings)."""

    name: str | None = None
    scan_depth: int = Field(default=2, ge=0, le=100)  # recent messages scanned for keys
    token_budget: int = Field(default=512, ge=1, le=32768)  # tokens all lore may take
    recursive_scanning: bool = False  # triggered entries' text may trigger others
    extensions: dict[str, JSONValue] = Field(default_factory=dict)


SHA256_PATTERN = r"^[0-9a-f]{64}$"


class PersonaAsset(_Strict):
    """A file of the persona (its avatar, a card's emotion images, ...), stored by hash.

    The bytes live in the persona's asset store, content-addressed; a definition names
    them by ``sha256``, so every version keeps its own files. ``uri`` is the card's own
    reference to the file (``embeded://...``, ``ccdefault:``, ``__asset:N``), kept so
    export can write the card back as it came.
    """

    name: NonEmpty
    type: NonEmpty = "icon"  # a card asset type: icon, background, emotion, user_icon, ...
    ext: str = ""
    media_type: NonEmpty
    sha256: Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
    size: int = Field(ge=0)
    uri: str | None = None

    @field_validator("ext")
    @classmethod
    def _no_dot(cls, value: str) -> str:
        return value.lower().lstrip(".")


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
    lorebook: LorebookSettings = Field(default_factory=LorebookSettings)
    post_history_instructions: str = ""
    model: ModelSettings = Field(default_factory=ModelSettings)
    status: Status = Status.active
    traits: dict[str, JSONValue] = Field(default_factory=dict)
    extensions: dict[str, JSONValue] = Field(default_factory=dict)
    assets: list[PersonaAsset] = Field(default_factory=list)
    # A writing persona's measured fingerprint and synthesis (personae.writing).
    writing: WritingBlock | None = None
    # The id was made from the name (none was given), so it may be made again to fit a
    # namespace (validation.in_namespace); a chosen id never changes. Never stored.
    _id_from_name: bool = PrivateAttr(default=False)

    @property
    def id_made_from_name(self) -> bool:
        return self._id_from_name

    def mark_id_made_from_name(self) -> PersonaDefinition:
        self._id_from_name = True
        return self

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

    @field_validator("knowledge", mode="before")
    @classmethod
    def _few_regex_keys(cls, value: Any) -> Any:
        """Counted before any item is validated (which compiles its regex keys)."""
        if isinstance(value, list):
            count = sum(1 for item in value if isinstance(item, dict)
                        for name in ("keys", "secondary_keys")
                        if isinstance(item.get(name), list)
                        for key in item[name] if isinstance(key, str) and _REGEX_KEY.match(key))
            if count > MAX_REGEX_KEYS:
                raise ValueError(f"{count:,} regular-expression keys in all; at most "
                                 f"{MAX_REGEX_KEYS:,} are accepted (plain keys are not limited)")
        return value

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
    def avatar_asset(self) -> PersonaAsset | None:
        """The avatar image: the icon named "main", else the first icon."""
        icons = [asset for asset in self.assets if asset.type == "icon"]
        return next((a for a in icons if a.name == "main"), icons[0] if icons else None)

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


def id_from_name(name: str, namespace: str | None = None) -> str:
    """The id a persona named ``name`` takes when none is given: the name as a slug,
    cut after its last whole word that fits, so that with ``namespace/`` before it the
    id is at most ``ID_MAX_LENGTH``; a first word longer than that is cut itself. ``""``
    when the name has no letter or digit to make a slug of."""
    room = ID_MAX_LENGTH - (len(namespace) + 1 if namespace else 0)
    slug = slugify(name)
    if len(slug) <= room:
        return slug
    cut = slug.rfind("-", 0, room + 1)  # a hyphen right after the room ends a word too
    return slug[:cut] if cut > 0 else slug[:room]


def hash_data(data: dict[str, Any]) -> str:
    """The content hash of a definition's ``to_data()`` form."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


# Field names a definition accepts, used to spot typos among unknown keys.
DEFINITION_FIELDS: frozenset[str] = frozenset(PersonaDefinition.model_fields)
