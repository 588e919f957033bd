"""The provider contracts: one streaming call each, everything else derived from it.

A language model turns chat messages into a stream of :class:`TextDelta` events that
ends with exactly one :class:`Finished` (usage and finish reason);
``streams.complete`` collects the stream. Structured output is asked for with
``GenerationSettings.json_schema`` (or ``json_object`` for any JSON object); a
provider that cannot honour it must raise, never return unconstrained text. A caller's
per-request settings (:class:`GenerationOverrides`) are applied on top of the
configured ones.

The voice providers' contracts are in :mod:`.speech`.

Nothing here knows about personas: callers say what they want with a
:class:`ModelChoice`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What a caller asks of a model; ``None`` leaves each choice to the provider's
    configuration (``provider`` to the default provider)."""

    provider: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    json_schema: dict[str, Any] | None = None
    # Any JSON object (OpenAI's ``json_object``); ``json_schema`` wins when both are set.
    json_object: bool = False
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    # The end user a caller acts for, passed to OpenAI-compatible upstreams as ``user``.
    user: str | None = None
    # Who is asking (a session id): a shared local model serves callers round-robin.
    fairness_key: str | None = None
    # False: only the whole reply is wanted, so a remote provider may fetch it in one
    # piece (one delta, then Finished) instead of paying for a stream.
    stream: bool = True


@dataclass(frozen=True, slots=True)
class GenerationOverrides:
    """A caller's own settings for one request; each one set wins over the configured
    (persona) settings. Unset is ``None`` (``()`` for ``stop``)."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    user: str | None = None

    def apply(self, settings: GenerationSettings) -> GenerationSettings:
        """``settings`` with these overrides on top."""
        chosen = {name: getattr(self, name) for name in _OVERRIDABLE
                  if getattr(self, name) is not None}
        if self.stop:
            chosen["stop"] = self.stop
        if self.json_schema is not None or self.json_object:
            chosen["json_schema"], chosen["json_object"] = self.json_schema, self.json_object
        return replace(settings, **chosen)


_OVERRIDABLE = ("temperature", "max_tokens", "top_p", "seed", "presence_penalty",
                "frequency_penalty", "user")
NO_OVERRIDES = GenerationOverrides()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    usage: Usage
    finish_reason: str = "stop"  # "stop" | "length"
    provider: str = ""
    model: str = ""


StreamEvent = TextDelta | Finished


@dataclass(slots=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: str
    provider: str
    model: str
    deltas: int = field(default=0)


@runtime_checkable
class LLM(Protocol):
    """What every model provider implements."""

    name: str
    context_window: int

    def stream(self, messages: Sequence[ChatMessage],
               settings: GenerationSettings) -> AsyncIterator[StreamEvent]: ...

    def count_tokens(self, text: str) -> int: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class LanguageAware(Protocol):
    """Optional: a provider that knows which languages its models handle well."""

    def languages_for(self, model: str | None) -> frozenset[str] | None:
        """BCP-47 primary tags ``model`` (None: the provider's default) handles well;
        None when unknown, which means no warning is given."""
        ...


CHARS_PER_TOKEN = 4


def approximate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters a token) for budgets, not billing."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
