"""The pure steps of making a writing persona: model choice, definition, progress."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slugify import slugify

from personae.errors import FieldIssue, ValidationFailed
from personae.personas.language import normalize_language
from personae.personas.schema import PersonaDefinition, Visibility
from personae.personas.writing_block import (
    Fingerprint,
    Onboarding,
    SampleSummary,
    Synthesis,
    WritingBlock,
)
from personae.providers.base import LLM, ChatMessage, GenerationSettings, ModelChoice, StreamEvent
from personae.providers.catalogue import model_names
from personae.providers.registry import EMBEDDED as EMBEDDED_KIND
from personae.writing.records import SampleText, samples_digest

MIN_ATTEMPTS, MAX_ATTEMPTS = 1, 5  # model attempts a caller may ask for
DEFAULT_LANGUAGE = "en"  # for samples in no language a persona can name ("und")


@dataclass(frozen=True, slots=True)
class WritingProgress:
    """One step of long work, for a progress line: ``synthesis attempt 2 of 3``."""

    stage: str  # "measuring" | "synthesising" | "storing" | "stored" | "unchanged"
    message: str
    attempt: int | None = None
    of: int | None = None


Progress = Callable[[WritingProgress], Awaitable[None] | None]


async def tell(progress: Progress | None, event: WritingProgress) -> None:
    if progress is not None:
        result = progress(event)
        if inspect.isawaitable(result):
            await result


class AttemptCounter:
    """An LLM that tells ``progress`` of each request: one synthesis attempt each, so
    the caller sees "synthesis attempt 2 of 3" without the synthesis knowing of it."""

    def __init__(self, llm: LLM, progress: Progress | None, of: int) -> None:
        self.llm, self.progress, self.of, self.made = llm, progress, of, 0
        self.name, self.context_window = llm.name, llm.context_window

    async def stream(self, messages: Sequence[ChatMessage],
                     settings: GenerationSettings) -> AsyncIterator[StreamEvent]:
        self.made += 1
        await tell(self.progress, WritingProgress(
            "synthesising", f"synthesis attempt {self.made} of {self.of}", self.made, self.of))
        async for event in self.llm.stream(messages, settings):
            yield event

    def count_tokens(self, text: str) -> int:
        return self.llm.count_tokens(text)

    async def aclose(self) -> None:
        """The wrapped model belongs to the provider registry: left open."""


@dataclass(frozen=True, slots=True)
class WritingRequest:
    """What a person sends to make a writing persona of their own voice."""

    name: str
    samples: Sequence[SampleText]
    onboarding: Onboarding = field(default_factory=Onboarding)
    id: str | None = None
    language: str | None = None  # None: detected from the samples
    model: str | None = None  # "provider/model", a provider's name, or a model name
    visibility: Visibility = Visibility.private
    max_attempts: int = 3


def check_attempts(max_attempts: int) -> int:
    if not MIN_ATTEMPTS <= max_attempts <= MAX_ATTEMPTS:
        raise ValidationFailed([FieldIssue("max_attempts", f"must be {MIN_ATTEMPTS}-"
                                           f"{MAX_ATTEMPTS}, not {max_attempts}")],
                               subject="request")
    return max_attempts


def model_choice(spec: str | None, providers: Sequence[str]) -> ModelChoice | None:
    """``provider/model`` (the model may hold slashes: ``remote/org/model``), a
    provider's name alone, or a model name (default provider). A name before a slash
    that is no provider is refused, naming the providers there are."""
    if spec is None or not spec.strip():
        return None
    provider, slash, name = spec.strip().partition("/")
    if provider in providers:
        return ModelChoice(provider=provider, model=name.strip() or None)
    if slash:
        raise ValidationFailed([FieldIssue("model", f"unknown provider {provider!r}; "
                                           f"known providers: {', '.join(providers)}")],
                               subject="model")
    return ModelChoice(model=provider)


def check_embedded_model(choice: ModelChoice | None, kind: str) -> None:
    """A model the embedded catalogue does not have is refused before any work (a
    remote provider's models cannot be listed offline: the provider judges them)."""
    if choice is None or choice.model is None or kind != EMBEDDED_KIND:
        return
    if choice.model not in model_names():
        raise ValidationFailed([FieldIssue("model", f"unknown embedded model "
                                           f"{choice.model!r}; known models: "
                                           f"{', '.join(model_names())}")],
                               subject="model")


def summary(samples: Sequence[SampleText], words: int) -> SampleSummary:
    return SampleSummary(count=len(samples), words=words,
                         sha256=samples_digest([s.text for s in samples]))


def described(fingerprint: Fingerprint, synthesis: Synthesis, name: str) -> str:
    """The identity claim when the synthesis is good, else what was measured, plainly."""
    if synthesis.status == "ok" and synthesis.identity is not None:
        return synthesis.identity.text
    return (f"{name}'s writing voice, measured from {fingerprint.sample_count} samples "
            f"({fingerprint.word_count:,} words, {fingerprint.language}).")


def definition(request: WritingRequest, block: WritingBlock) -> dict[str, Any]:
    """The persona (as loose data, validated by the persona service like any other): a
    short instruction to write in this person's voice, plus the block."""
    return {
        "id": request.id or persona_slug(request.name),
        "name": request.name,
        "description": described(block.fingerprint, block.synthesis, request.name),
        "language": persona_language(request.language or block.fingerprint.language),
        "system_prompt": (f"You write in {request.name}'s own voice: their words, rhythm "
                          "and habits as measured in their samples, never a generic style."),
        "tags": ["writing"],
        "writing": block.model_dump(mode="json"),
    }


def persona_slug(name: str) -> str:
    """The persona id a name gives when no id is sent (``Sam Lee`` -> ``sam-lee``)."""
    return slugify(name, max_length=64) or "writer"


def persona_language(tag: str) -> str:
    """The samples' language as a persona language; English when it cannot be one."""
    try:
        found = normalize_language(tag)
    except ValueError:
        return DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE if found == "und" else found


def check_language(tag: str | None) -> str | None:
    """A language the caller named for the samples, as a tag; None: detect it."""
    if tag is None:
        return None
    try:
        return normalize_language(tag)
    except ValueError as exc:
        raise ValidationFailed([FieldIssue("language", str(exc))], subject="language") from None


def with_block(current: PersonaDefinition, block: WritingBlock) -> PersonaDefinition:
    """The same persona with a new block (a description it still derives follows it)."""
    old = current.writing
    updates: dict[str, object] = {"writing": block}
    if old is None or current.description == described(old.fingerprint, old.synthesis,
                                                       current.name):
        updates["description"] = described(block.fingerprint, block.synthesis, current.name)
    return current.model_copy(update=updates)
