"""What validation says about a draft: hard violations, meters and a style report.

Each part carries a plain ``explanation`` so a person (or the CLI) can show it as is;
the numbers beside it are for programs. Hard violations decide ``meets_limits``;
the style report never does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

Verdict = Literal["close", "near", "far", "unknown"]


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Meter(_Report):
    """One limit as the platform counts it: ``271/280``."""

    name: str  # "text", "title", "hashtags", "see_more", ...
    used: int
    limit: int
    counting: str  # how ``used`` was counted: "weighted", "graphemes", ...
    hard: bool = True  # False: a soft guide (the "see more" fold)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def shown(self) -> str:
        return f"{self.used}/{self.limit}"


class Violation(_Report):
    """A hard rule the draft breaks."""

    code: str  # "too_long", "too_many_hashtags", "banned_word", "wrong_language", ...
    message: str
    limit: int | None = None
    actual: int | None = None
    words: list[str] = Field(default_factory=list)


class StyleDistance(_Report):
    value: float | None  # Cosine Delta to the samples (None: draft too short to measure)
    typical: float | None  # the person's own held-out chunks, on average
    z: float | None  # (value - typical) / spread of the person's own chunks
    verdict: Verdict
    explanation: str


class Deviation(_Report):
    """A measure of the draft beside the same measure of the samples."""

    name: str  # "sentence_length", "em_dash", "exclamation", ...
    draft: float
    samples: float
    unit: str  # "words per sentence", "per 1,000 words", ...
    notable: bool  # far enough from the samples to mention
    explanation: str


class StyleReport(_Report):
    distance: StyleDistance
    sentence_length: Deviation
    punctuation: list[Deviation] = Field(default_factory=list)
    go_to_used: list[str] = Field(default_factory=list)  # the person's markers in the draft
    avoided_used: list[str] = Field(default_factory=list)  # words they never use, used
    # One summary number, higher sounds more like them; None: not comparable (another
    # language than the samples, or too short to judge), the explanation says why.
    score: float | None = Field(default=None, ge=0, le=100)
    explanation: str


class ValidationReport(_Report):
    platform: str
    persona_id: str
    persona_version: int
    meets_limits: bool  # no hard violation
    violations: list[Violation] = Field(default_factory=list)
    meters: list[Meter] = Field(default_factory=list)
    language: str | None = None  # detected language of the draft
    style: StyleReport | None = None  # None when the persona has no writing block
    warnings: list[str] = Field(default_factory=list)
