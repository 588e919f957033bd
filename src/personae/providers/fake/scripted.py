"""An in-process language model that answers from a script, for fast unit tests.

No server, no model: queue the replies a test expects, run the code under test, then
look at what it asked::

    llm = ScriptedLLM().queue("Hello there.", ["Exact", " deltas"],
                              ProviderTimeout("scripted", "too slow", retryable=True))
    ...
    assert llm.requests[0].messages[-1].content == "hi"

A reply is a ``str`` (streamed as word deltas), a list of deltas (streamed exactly;
an exception in it is raised at that point, after the deltas before it), or an
exception (raised before any delta). With nothing queued, the last user message is
echoed back (so a nonce in it comes back), or, with ``when_empty="fail"``, a
ProviderError is raised, for tests that must notice an unexpected call.

Configured as ``{"kind": "scripted"}``, ``registry.get(name)`` is the instance to
script.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Self

from personae.errors import ProviderError
from personae.providers.base import (
    CHARS_PER_TOKEN,
    ChatMessage,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
    approximate_tokens,
)

if TYPE_CHECKING:
    from personae.config import ProviderConfig, Settings

Reply = str | Sequence[str | BaseException] | BaseException
WhenEmpty = Literal["echo", "fail"]
NAME = "scripted"
Deltas = list[str | BaseException]


@dataclass(frozen=True, slots=True)
class ScriptedRequest:
    """One call to ``stream``, as the provider received it."""

    messages: tuple[ChatMessage, ...]
    settings: GenerationSettings

    @property
    def last_user(self) -> str:
        return last_user_message(self.messages)


class ScriptedLLM:
    """An :class:`~personae.providers.base.LLM` whose replies a test queues in advance.

    ``max_tokens`` is honoured approximately (the reply is cut at about 4 characters a
    token, finishing with ``"length"``); usage is counted with ``approximate_tokens``.
    A ``json_schema`` request is answered only from the queue: the script is trusted
    and no JSON is ever invented; a ``json_object`` request with nothing queued gets
    the echo wrapped as ``{"reply": ...}``. Every request's settings are recorded
    (``requests[i].settings``), so a test can check what arrived.
    """

    def __init__(self, name: str = NAME, *, context_window: int = 8192, model: str = NAME,
                 when_empty: WhenEmpty = "echo",
                 languages: frozenset[str] | None = None) -> None:
        self.name = name
        self.languages = languages  # reported by languages_for (None: unknown)
        self.context_window = context_window
        self.model = model
        self.when_empty: WhenEmpty = when_empty
        self.requests: list[ScriptedRequest] = []
        self.closed = False
        self._replies: deque[Reply] = deque()

    def queue(self, *replies: Reply) -> Self:
        """Add replies, answered in order, one per call to ``stream``."""
        self._replies.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Replies queued and not yet used."""
        return len(self._replies)

    @property
    def last_request(self) -> ScriptedRequest:
        return self.requests[-1]

    def count_tokens(self, text: str) -> int:
        return approximate_tokens(text)

    def languages_for(self, model: str | None) -> frozenset[str] | None:
        return self.languages

    async def aclose(self) -> None:
        self.closed = True

    async def stream(self, messages: Sequence[ChatMessage],
                     settings: GenerationSettings) -> AsyncIterator[StreamEvent]:
        """Record the request, then play the next reply: deltas and one ``Finished``."""
        request = ScriptedRequest(tuple(messages), settings)
        self.requests.append(request)
        deltas, reason = cut(self._next_reply(request), settings.max_tokens)
        sent: list[str] = []
        for delta in deltas:
            if isinstance(delta, BaseException):
                raise delta
            sent.append(delta)
            yield TextDelta(delta)
        prompt = sum(approximate_tokens(message.content) for message in messages)
        usage = Usage(prompt, approximate_tokens("".join(sent)))
        yield Finished(usage, reason, self.name, settings.model or self.model)

    def _next_reply(self, request: ScriptedRequest) -> Deltas:
        if self._replies:
            reply = self._replies.popleft()
        elif self.when_empty == "fail":
            raise ProviderError(self.name, "no reply queued; queue one with .queue(...)")
        elif request.settings.json_schema is not None:
            raise ProviderError(self.name, "no reply queued for a JSON schema request; "
                                "queue the JSON text to answer with")
        elif request.settings.json_object:
            reply = json.dumps({"reply": request.last_user})
        else:
            reply = request.last_user
        if isinstance(reply, BaseException):
            return [reply]
        if isinstance(reply, str):
            return list(split_words(reply))
        return list(reply)


def build_scripted(name: str, config: ProviderConfig, settings: Settings) -> ScriptedLLM:
    """The ``scripted`` kind's factory; its context window and model come from config."""
    return ScriptedLLM(name, context_window=config.context_window,
                       model=config.model or NAME)


def cut(deltas: Deltas, max_tokens: int | None) -> tuple[Deltas, str]:
    """The deltas within ``max_tokens`` (about 4 characters each), and the finish reason.

    An exception scripted after the cut is never reached, as with a real provider
    that stopped early.
    """
    text = "".join(delta for delta in deltas if isinstance(delta, str))
    if max_tokens is None or approximate_tokens(text) <= max_tokens:
        return deltas, "stop"
    budget = max_tokens * CHARS_PER_TOKEN
    kept: Deltas = []
    for delta in deltas:
        if isinstance(delta, BaseException):
            kept.append(delta)
            continue
        if budget <= 0:
            break
        kept.append(delta[:budget])
        budget -= len(delta)
    return kept, "length"


def last_user_message(messages: Sequence[ChatMessage]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def split_words(text: str) -> list[str]:
    """Word-sized deltas whose concatenation is exactly ``text``."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or ([text] if text else [])
