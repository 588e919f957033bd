"""Bodies of ``/v1/writing``: writing personas, their samples, and drafts per platform."""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool

from personae.api.schemas.common import Body, Public, WholeNumber
from personae.personas.schema import Visibility
from personae.personas.writing_block import Onboarding
from personae.writing.building import MAX_ATTEMPTS, MIN_ATTEMPTS
from personae.writing.platforms import PlatformSpec
from personae.writing.reports import ValidationReport
from personae.writing.samples import MAX_SAMPLES, MAX_TITLE_CHARS

Attempts = Field(default=3, ge=MIN_ATTEMPTS, le=MAX_ATTEMPTS,
                 description="model attempts (each re-validated)")
SAMPLES_HELP = ("pieces of the person's own writing: each a string, or {text, title}")
ModelSpec = Field(default=None, max_length=200,
                  description="provider/model, a provider's name, or a model name")


class SampleIn(Body):
    text: str = Field(description="one piece of the person's own writing (at most "
                                  "100,000 characters; 1,000,000 in all)")
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)


class WritingPersonaCreate(Body):
    """A writing persona from samples of a person's own writing and what they tell us."""

    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, max_length=64,
                           description="the persona id in your namespace; default: the "
                                       "name, slugged")
    samples: list[SampleIn | str] = Field(min_length=1, max_length=MAX_SAMPLES,
                                          description=SAMPLES_HELP)
    audience: str = Field(default="", max_length=1000)
    goals: list[str] = Field(default_factory=list, max_length=20)
    topics: list[str] = Field(default_factory=list, max_length=50)
    banned_words: list[str] = Field(default_factory=list, max_length=200)
    notes: str = Field(default="", max_length=4000)
    language: str | None = Field(default=None, max_length=35,
                                 description="the samples' language; default: detected")
    model: str | None = ModelSpec
    visibility: Visibility = Visibility.private
    max_attempts: WholeNumber = Attempts

    def onboarding(self) -> Onboarding:
        return Onboarding(name=self.name, audience=self.audience, goals=self.goals,
                          topics=self.topics, banned_words=self.banned_words,
                          notes=self.notes)


class SamplesReplace(Body):
    samples: list[SampleIn | str] = Field(min_length=1, max_length=MAX_SAMPLES,
                                          description=SAMPLES_HELP)
    model: str | None = ModelSpec
    max_attempts: WholeNumber = Attempts


class Regenerate(Body):
    model: str | None = ModelSpec
    max_attempts: WholeNumber = Attempts


class SamplePublic(Public):
    position: int
    title: str | None
    text: str
    words: int
    sha256: str
    created_at: str


class SamplesPublic(Public):
    persona_id: str
    data: list[SamplePublic]
    count: int


class WritingPersonasPublic(Public):
    data: list[dict[str, Any]] = Field(description="personas, as GET /v1/personas/{id}")
    count: int


class DraftValidate(Body):
    persona: str = Field(min_length=1, max_length=200, description="the persona id")
    text: str = Field(description="the draft (at most 100,000 characters)")
    title: str | None = Field(default=None, max_length=1000)


class DraftOptimize(Body):
    persona: str = Field(min_length=1, max_length=200)
    text: str
    model: str | None = ModelSpec
    max_attempts: WholeNumber = Attempts
    stream: StrictBool = Field(default=False, description="server-sent events: attempt, "
                                                          "delta, scored, done")


class DraftWrite(Body):
    persona: str = Field(min_length=1, max_length=200)
    topic: str = Field(min_length=1, max_length=2000)
    notes: str = Field(default="", max_length=10_000)
    model: str | None = ModelSpec
    max_attempts: WholeNumber = Attempts
    stream: StrictBool = Field(default=False, description="server-sent events: attempt, "
                                                          "delta, scored, done")


class PlatformsPublic(Public):
    data: list[PlatformSpec]
    count: int


class AttemptPublic(Public):
    number: int = Field(description="0: the draft as sent (optimize); 1..N: the model's")
    text: str
    report: ValidationReport
    same_as: int | None = Field(default=None, description="the earlier attempt whose "
                                "text the model returned again (no new candidate)")


class WritingResultPublic(Public):
    """The best attempt (limits met first, then the closest style), with every attempt."""

    best: int
    text: str
    report: ValidationReport
    attempts: list[AttemptPublic]
    meets_limits: bool
    reason: str = Field(description="why this attempt, and any limit it still breaks")
