"""A persona test suite: cases of user turns, each with assertions on the replies.

Suites are YAML files, read with the same bounds as every other untrusted document
(``limits.load_yaml``: no aliases, bounded depth). Unknown keys are errors, named by
their path (``cases[0].expect[1].wrods: extra inputs are not permitted``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import regex
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from personae.errors import FieldIssue, InvalidInput, ValidationFailed
from personae.limits import load_yaml
from personae.writing.platforms import all_platforms

MAX_SUITE_BYTES = 1024 * 1024
MAX_REPEAT = 100

SMS_CHARS = 160  # one GSM-7 text message: not a writing platform, so kept here


def _platform_chars() -> dict[str, int]:
    """Characters a post may hold on each platform (the whole post, not a preview),
    from the writing platform registry: ids, aliases and ``<id>-comment`` limits."""
    table = {"sms": SMS_CHARS}
    for spec in all_platforms():
        for name in (spec.id, *spec.aliases):
            table[name] = spec.text_limit.max
        comment = spec.limit_for("comment")
        if comment is not None:
            table[f"{spec.id}-comment"] = comment.max
    return table


PLATFORM_CHARS: dict[str, int] = _platform_chars()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LanguageIs(_Strict):
    kind: Literal["language"]
    is_: str = Field(alias="is", min_length=2, max_length=16)


class _Words(_Strict):
    words: list[str] = Field(default_factory=list)
    from_: Literal["expertise_keywords"] | None = Field(default=None, alias="from")

    @model_validator(mode="after")
    def _some_words(self) -> _Words:
        if not self.words and self.from_ is None:
            raise ValueError("give words or from: expertise_keywords")
        return self


class ContainsAny(_Words):
    kind: Literal["contains_any"]


class ContainsAll(_Words):
    kind: Literal["contains_all"]


class ContainsNone(_Words):
    kind: Literal["contains_none"]


class RegexMatch(_Strict):
    kind: Literal["regex"]
    pattern: str = Field(min_length=1, max_length=1000)
    must_match: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            regex.compile(value)
        except regex.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class Length(_Strict):
    kind: Literal["length"]
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=0)
    min_words: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=0)


class JsonSchema(_Strict):
    kind: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class NoPersonaBreak(_Strict):
    kind: Literal["no_persona_break"]
    extra_phrases: list[str] = Field(default_factory=list)


class NoLoops(_Strict):
    kind: Literal["no_loops"]
    max_repeated_ngram: int = Field(default=3, ge=1)
    n: int = Field(default=4, ge=1, le=20)
    max_similarity_to_previous: float = Field(default=0.8, ge=0, le=1)


class Greeting(_Strict):
    kind: Literal["greeting"]
    exact: bool = True


class MaxPlatformChars(_Strict):
    kind: Literal["max_platform_chars"]
    platform: str | None = None
    chars: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_limit(self) -> MaxPlatformChars:
        if (self.platform is None) == (self.chars is None):
            raise ValueError("give exactly one of platform or chars")
        if self.platform is not None and self.platform not in PLATFORM_CHARS:
            raise ValueError(f"unknown platform {self.platform!r}; known: "
                             + ", ".join(sorted(PLATFORM_CHARS)))
        return self

    @property
    def limit(self) -> int:
        return self.chars if self.chars is not None else PLATFORM_CHARS[str(self.platform)]


class Judge(_Strict):
    kind: Literal["judge"]
    rubric: str = Field(min_length=1, max_length=4000)
    min_score: int = Field(default=4, ge=1, le=5)


Assertion = Annotated[
    LanguageIs | ContainsAny | ContainsAll | ContainsNone | RegexMatch | Length
    | JsonSchema | NoPersonaBreak | NoLoops | Greeting | MaxPlatformChars | Judge,
    Field(discriminator="kind")]


class Case(_Strict):
    name: str = Field(min_length=1, max_length=200)
    turns: list[str] = Field(min_length=1, max_length=50)
    repeat: int | None = Field(default=None, ge=1, le=MAX_REPEAT)
    threshold: float | None = Field(default=None, ge=0, le=1)
    expect: list[Assertion] = Field(min_length=1)


class Suite(_Strict):
    name: str = Field(min_length=1, max_length=200)
    persona: str | None = None
    description: str = ""
    threshold: float = Field(default=1.0, ge=0, le=1)
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        names = [case.name for case in self.cases]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"case names must be unique: {', '.join(duplicates)}")
        return self

    def repeat_for(self, case: Case, override: int | None = None) -> int:
        return override or case.repeat or self.repeat

    def threshold_for(self, case: Case) -> float:
        return case.threshold if case.threshold is not None else self.threshold


def parse_suite(text: str, source: str = "suite") -> Suite:
    """A suite from YAML text; problems are a ValidationFailed naming each path."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{source}: a suite is a mapping with name and cases")
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed([_issue(error) for error in exc.errors()], source) from None


def load_suite(path: Path) -> Suite:
    """A suite from a file, refusing one larger than MAX_SUITE_BYTES before reading it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or exc}") from None
    if size > MAX_SUITE_BYTES:
        raise InvalidInput(f"{path}: larger than {MAX_SUITE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from None
    return parse_suite(text, str(path))


def _issue(error: Any) -> FieldIssue:
    """A pydantic error as ``cases[0].expect[1].words``: the union's tag left out."""
    parts: list[str] = []
    for step in error["loc"]:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif not (parts and parts[-1].endswith("]") and _is_kind_tag(step)):
            parts.append(f".{step}" if parts else str(step))
    message = str(error["msg"]).removeprefix("Value error, ")
    return FieldIssue("".join(parts), message)


def _is_kind_tag(step: str) -> bool:
    return step in _KINDS


_KINDS = {"language", "contains_any", "contains_all", "contains_none", "regex", "length",
          "json_schema", "no_persona_break", "no_loops", "greeting", "max_platform_chars",
          "judge"}
