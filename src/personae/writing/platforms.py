"""Platforms as data: each platform's limits, counting rules and conventions.

The specs live in ``platforms.yaml`` beside this module (package data); one entry
there adds a platform, with no code change. The file is read once, through the same
bounded YAML reader as every other document, and validated strictly: an unknown field
or a tone outside the persona tone vocabulary (``TONES``) is an error naming the entry
and the field.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from personae.errors import FieldIssue, NotFound, ValidationFailed
from personae.limits import load_yaml
from personae.personas.writing_block import Tone
from personae.writing.counting import Counting

LimitField = Literal["text", "title", "description", "comment"]
_BODY_FIELDS = ("text", "description")  # the post body, by the platform's own name


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Limit(_Spec):
    """One hard limit, counted the platform's way, with where the number comes from."""

    field: LimitField = "text"
    max: int = Field(ge=1)
    counting: Counting = "characters"
    url_length: int | None = Field(default=None, ge=1)  # every URL counts this many
    shown_before_more: int | None = Field(default=None, ge=1)  # the "see more" fold
    source: str = Field(min_length=1)


class Hashtags(_Spec):
    max: int | None = Field(default=None, ge=0)  # hard: more is a violation
    recommended: int | None = Field(default=None, ge=0)  # a guide
    placement: str = ""
    advice: list[str] = Field(default_factory=list)


class Mentions(_Spec):
    advice: list[str] = Field(default_factory=list)


class Emoji(_Spec):
    max_recommended: int | None = Field(default=None, ge=0)  # per post, a norm
    advice: list[str] = Field(default_factory=list)


class Links(_Spec):
    counted_as: int | None = Field(default=None, ge=1)  # None: counted as written
    advice: list[str] = Field(default_factory=list)


class Format(_Spec):
    paragraphs: str = ""
    line_breaks: str = ""
    lists: str = ""


class ToneRules(_Spec):
    prefer: list[Tone] = Field(default_factory=list)
    avoid: list[Tone] = Field(default_factory=list)
    adjustments: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> ToneRules:
        both = sorted(set(self.prefer) & set(self.avoid))
        if both:
            raise ValueError(f"tones both preferred and avoided: {', '.join(both)}")
        return self


class PlatformSpec(_Spec):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)  # other ids it answers to
    limits: list[Limit] = Field(min_length=1)
    typical_words: int = Field(default=80, ge=1)  # a post's length when nothing is known
    hashtags: Hashtags = Field(default_factory=Hashtags)
    mentions: Mentions = Field(default_factory=Mentions)
    emoji: Emoji = Field(default_factory=Emoji)
    links: Links = Field(default_factory=Links)
    format: Format = Field(default_factory=Format)
    tone: ToneRules = Field(default_factory=ToneRules)

    @model_validator(mode="after")
    def _one_body(self) -> PlatformSpec:
        fields = [limit.field for limit in self.limits]
        if len(set(fields)) != len(fields):
            raise ValueError("each field may have one limit")
        if not any(f in _BODY_FIELDS for f in fields):
            raise ValueError("a platform needs a 'text' (or 'description') limit")
        return self

    @property
    def text_limit(self) -> Limit:
        """The limit on the post body ("text", or "description" where it is named so)."""
        return next(limit for limit in self.limits if limit.field in _BODY_FIELDS)

    def limit_for(self, field: str) -> Limit | None:
        return next((limit for limit in self.limits if limit.field == field), None)


class _PlatformFile(_Spec):
    platforms: list[PlatformSpec] = Field(min_length=1)


def _issues(exc: ValidationError, document: object) -> list[FieldIssue]:
    """Pydantic's errors as paths a person can find: ``platforms[3] (x).tone.prefer[0]``."""
    entries = document.get("platforms") if isinstance(document, dict) else None
    issues = []
    for error in exc.errors():
        loc = list(error["loc"])
        path = ""
        if len(loc) >= 2 and loc[0] == "platforms" and isinstance(loc[1], int):
            entry = entries[loc[1]] if isinstance(entries, list) else None
            name = f" ({entry['id']})" if isinstance(entry, dict) and "id" in entry else ""
            path, loc = f"platforms[{loc[1]}]{name}", loc[2:]
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        issues.append(FieldIssue(path, error["msg"]))
    return issues


def load_platforms(text: str, source: str = "platforms.yaml") -> dict[str, PlatformSpec]:
    """Every platform in a platforms file, by id and alias; ValidationFailed naming
    the entry and field of anything malformed."""
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed([FieldIssue("", f"not valid YAML: {exc}")], source) from None
    try:
        parsed = _PlatformFile.model_validate(document)
    except ValidationError as exc:
        raise ValidationFailed(_issues(exc, document), source) from None
    table: dict[str, PlatformSpec] = {}
    for index, spec in enumerate(parsed.platforms):
        for name in (spec.id, *spec.aliases):
            if name in table:
                raise ValidationFailed([FieldIssue(f"platforms[{index}] ({spec.id})",
                                                   f"id or alias {name!r} is used twice")],
                                       source)
            table[name] = spec
    return table


@cache
def _registry() -> dict[str, PlatformSpec]:
    text = resources.files("personae.writing").joinpath("platforms.yaml").read_text("utf-8")
    return load_platforms(text)


def platform(platform_id: str) -> PlatformSpec:
    """The spec for ``platform_id`` (or one of its aliases); NotFound names the ids."""
    spec = _registry().get(platform_id.strip().lower())
    if spec is None:
        known = ", ".join(s.id for s in all_platforms())
        raise NotFound(f"unknown platform {platform_id[:60]!r}; known: {known}",
                       {"platform": platform_id[:60], "known": [s.id for s in all_platforms()]})
    return spec


def all_platforms() -> list[PlatformSpec]:
    """Every platform once, in the file's order."""
    return list({spec.id: spec for spec in _registry().values()}.values())
