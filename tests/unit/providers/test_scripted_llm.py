"""The scripted in-process model: queued replies, recorded requests, scripted failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from personae.providers.base import (
    LLM,
    ChatMessage,
    Finished,
    GenerationSettings,
    ModelChoice,
    StreamEvent,
    TextDelta,
    Usage,
)
from personae.providers.fake import ScriptedLLM, ScriptedRequest
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import complete

HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello nonce-42")]
SETTINGS = GenerationSettings()


async def collect(llm: ScriptedLLM, settings: GenerationSettings = SETTINGS,
                  ) -> list[StreamEvent]:
    return [event async for event in llm.stream(HELLO, settings)]


async def drain(llm: ScriptedLLM, seen: list[StreamEvent]) -> None:
    """Consume a stream, keeping what arrived before any failure."""
    async for event in llm.stream(HELLO, SETTINGS):
        seen.append(event)


def texts(events: list[StreamEvent]) -> list[str]:
    return [event.text for event in events if isinstance(event, TextDelta)]


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[ProviderRegistry]:
    settings = Settings(data_dir=tmp_path, default_provider="fake", breaker_failures=5,
                        providers={"fake": ProviderConfig(kind="scripted", model="script-1",
                                                          context_window=4096,
                                                          max_retries=1)})
    built = ProviderRegistry(settings)
    yield built
    await built.aclose()


def scripted(registry: ProviderRegistry, name: str = "fake") -> ScriptedLLM:
    llm = registry.get(name)
    assert isinstance(llm, ScriptedLLM)
    return llm


def test_it_is_an_llm() -> None:
    assert isinstance(ScriptedLLM(), LLM)


async def test_text_streams_as_word_deltas_then_one_finished() -> None:
    llm = ScriptedLLM().queue("Hello there, world.")
    events = await collect(llm)
    assert texts(events) == ["Hello", " there,", " world."]
    assert events[-1] == Finished(Usage(7, 5), "stop", "scripted", "scripted")
    assert sum(isinstance(event, Finished) for event in events) == 1


async def test_a_list_streams_exact_deltas_and_replies_come_in_order() -> None:
    llm = ScriptedLLM().queue(["He", "llo"], "second")
    assert texts(await collect(llm)) == ["He", "llo"]
    assert texts(await collect(llm)) == ["second"]
    assert llm.pending == 0


async def test_every_request_is_recorded() -> None:
    llm = ScriptedLLM().queue("a", "b")
    wanted = GenerationSettings(model="m", temperature=0.1)
    await collect(llm)
    await collect(llm, wanted)
    assert llm.requests == [ScriptedRequest(tuple(HELLO), SETTINGS),
                            ScriptedRequest(tuple(HELLO), wanted)]
    assert llm.last_request.last_user == "hello nonce-42"


async def test_a_queued_exception_is_raised_when_reached() -> None:
    failure = ProviderUnavailable("scripted", "down", retryable=True)
    llm = ScriptedLLM().queue("first", failure, "third")
    assert texts(await collect(llm)) == ["first"]
    with pytest.raises(ProviderUnavailable) as caught:
        await collect(llm)
    assert caught.value is failure
    assert texts(await collect(llm)) == ["third"]
    assert len(llm.requests) == 3


async def test_an_exception_among_deltas_interrupts_the_stream() -> None:
    llm = ScriptedLLM().queue(["partial", ProviderError("scripted", "dropped")])
    seen: list[StreamEvent] = []
    with pytest.raises(ProviderError, match="dropped"):
        await drain(llm, seen)
    assert seen == [TextDelta("partial")]


async def test_max_tokens_cuts_the_reply_with_length() -> None:
    llm = ScriptedLLM().queue("one two three four five six", ["abcdef", "ghijkl"])
    events = await collect(llm, GenerationSettings(max_tokens=2))
    assert "".join(texts(events)) == "one two "
    assert events[-1].finish_reason == "length"  # type: ignore[union-attr]
    assert events[-1].usage.completion_tokens == 2  # type: ignore[union-attr]
    assert texts(await collect(llm, GenerationSettings(max_tokens=2))) == ["abcdef", "gh"]


async def test_a_reply_within_max_tokens_is_whole() -> None:
    llm = ScriptedLLM().queue("short")
    completion = await complete(llm, HELLO, GenerationSettings(max_tokens=2))
    assert (completion.text, completion.finish_reason) == ("short", "stop")


async def test_with_nothing_queued_the_last_user_message_is_echoed() -> None:
    completion = await complete(ScriptedLLM(), HELLO, SETTINGS)
    assert completion.text == "hello nonce-42"


async def test_with_nothing_queued_a_strict_script_fails() -> None:
    llm = ScriptedLLM("strict", when_empty="fail")
    with pytest.raises(ProviderError, match="strict: no reply queued"):
        await collect(llm)
    assert len(llm.requests) == 1


async def test_json_schema_is_answered_only_from_the_queue() -> None:
    wanted = GenerationSettings(json_schema={"type": "object"})
    llm = ScriptedLLM().queue('{"ok": true}')
    assert (await complete(llm, HELLO, wanted)).text == '{"ok": true}'
    with pytest.raises(ProviderError, match="no reply queued for a JSON schema"):
        await collect(llm, wanted)


async def test_configured_kind_is_reachable_from_the_registry(
        registry: ProviderRegistry) -> None:
    fake = scripted(registry)
    assert (fake.name, fake.context_window, fake.model) == ("fake", 4096, "script-1")
    fake.queue("configured reply")
    llm, settings = registry.resolve(ModelChoice(temperature=0.5))
    completion = await complete(llm, HELLO, settings)
    assert (completion.text, completion.provider, completion.model) == (
        "configured reply", "fake", "script-1")
    assert fake.last_request.settings == GenerationSettings(model="script-1",
                                                            temperature=0.5)


async def test_scripted_failures_drive_the_retry_policy(registry: ProviderRegistry) -> None:
    fake = scripted(registry)
    fake.queue(ProviderTimeout("fake", "slow", retryable=True), "after a retry")
    llm, settings = registry.resolve(None)
    assert (await complete(llm, HELLO, settings)).text == "after a retry"
    assert len(fake.requests) == 2


async def test_closing_the_registry_closes_it(tmp_path: Path) -> None:
    registry = ProviderRegistry(Settings(data_dir=tmp_path, providers={
        "fake": ProviderConfig(kind="scripted")}))
    fake = scripted(registry)
    await registry.aclose()
    assert fake.closed
