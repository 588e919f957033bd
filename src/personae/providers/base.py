"""The model-provider contract: one streaming call, everything else derived from it.

A provider turns chat messages into a stream of :class:`TextDelta` events that ends
with exactly one :class:`Finished` (usage and finish reason). ``complete`` collects
the stream. Structured output is asked for with ``GenerationSettings.json_schema``;
a provider that cannot honour it must raise, never return unconstrained text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    json_schema: dict[str, Any] | None = None
    stop: tuple[str, ...] = ()
    # Who is asking (a session id): a shared local model serves callers round-robin.
    fairness_key: str | None = None
    # False: only the whole reply is wanted, so a remote provider may fetch it in one
    # piece (one delta, then Finished) instead of paying for a stream.
    stream: bool = True


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


async def complete(llm: LLM, messages: Sequence[ChatMessage],
                   settings: GenerationSettings) -> Completion:
    """Run a stream to the end and return the whole reply."""
    parts: list[str] = []
    finished: Finished | None = None
    async for event in llm.stream(messages, settings):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        else:
            finished = event
    if finished is None:
        finished = Finished(Usage(), "stop", llm.name, settings.model or "")
    return Completion("".join(parts), finished.usage, finished.finish_reason,
                      finished.provider or llm.name, finished.model, len(parts))


def approximate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters a token) for budgets, not billing."""
    return max(1, (len(text) + 3) // 4) if text else 0
