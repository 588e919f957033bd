"""The embedded provider against the real bundled model (SmolLM2-135M via llama.cpp).

Skipped when ``llama_cpp`` or the bundled model is missing, unless
``PERSONAE_REQUIRE_MODEL=1``, which turns the skip into a failure. Generations are
kept short (small ``max_tokens``, ``n_ctx`` 512/1024) so the module runs in seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from personae.config import Settings
from personae.conversations.gateway import ChatRequest
from personae.errors import ProviderError, ProviderUnavailable
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationOverrides,
    GenerationSettings,
    StreamEvent,
    TextDelta,
)
from personae.providers.catalogue import UnknownModel
from personae.providers.llama_cpp import EmbeddedLLM
from personae.providers.scheduling import FairScheduler
from personae.providers.streams import complete
from tests.conftest import sqlite_url_for
from tests.support.runtime import MEMBERS, create_global_personas, create_people, open_runtime

pytestmark = pytest.mark.slow

HELLO = [ChatMessage("system", "You are a terse assistant."),
         ChatMessage("user", "Say hello in five words.")]
LONG = [ChatMessage("user", "Write a detailed essay about the history of the bicycle.")]
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20},
                   "age": {"type": "integer", "minimum": 0, "maximum": 150}},
    "required": ["name", "age"],
    "additionalProperties": False,
}

Factory = Callable[..., EmbeddedLLM]


@pytest.fixture
async def make_llm(model_path: Path) -> AsyncIterator[Factory]:
    """Builds providers on the bundled model and closes them after the test."""
    made: list[EmbeddedLLM] = []

    def make(parallel: int = 1, n_ctx: int = 1024) -> EmbeddedLLM:
        llm = EmbeddedLLM(model_path, context_window=n_ctx, parallel=parallel)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.aclose()


async def _collect(llm: EmbeddedLLM, settings: GenerationSettings,
                   messages: list[ChatMessage] = HELLO, key: str | None = None
                   ) -> list[StreamEvent]:
    return [event async for event in llm.stream(messages, settings, session_key=key)]


async def test_a_short_generation_streams_deltas_and_reports_usage(make_llm: Factory) -> None:
    llm = make_llm()
    events = await _collect(llm, GenerationSettings(max_tokens=16, temperature=0))

    deltas = [event for event in events if isinstance(event, TextDelta)]
    finished = events[-1]
    assert deltas
    assert isinstance(finished, Finished)
    assert [event for event in events if isinstance(event, Finished)] == [finished]
    assert finished.usage.prompt_tokens > 0
    assert 0 < finished.usage.completion_tokens <= 16
    assert finished.finish_reason in {"stop", "length"}
    assert (finished.provider, finished.model) == ("embedded", "SmolLM2-135M-Instruct.Q4_1")
    assert llm.count_tokens("Hello there, how are you?") > 0


async def test_json_schema_output_parses_with_the_required_keys(make_llm: Factory) -> None:
    llm = make_llm()
    settings = GenerationSettings(max_tokens=96, temperature=0, json_schema=PERSON_SCHEMA)
    messages = [ChatMessage("user", "Invent a person. Reply with their name and age.")]

    reply = await complete(llm, messages, settings)

    data = json.loads(reply.text)
    assert set(data) == {"name", "age"}
    assert isinstance(data["name"], str)
    assert isinstance(data["age"], int)


async def test_a_schema_llama_cpp_cannot_honour_is_refused(make_llm: Factory) -> None:
    llm = make_llm()
    schema = {"type": "object", "properties": {"x": {"$ref": "https://example.com/x.json"}}}
    with pytest.raises(ProviderError, match="unsupported JSON schema"):
        await complete(llm, HELLO, GenerationSettings(json_schema=schema))


async def test_one_slot_serves_queued_callers_round_robin(make_llm: Factory) -> None:
    """With one slot, a second caller goes before the first caller's second request."""
    llm = make_llm(parallel=1)
    await llm.load()
    settings = GenerationSettings(max_tokens=8, temperature=0)
    done: list[str] = []

    async def run(label: str, key: str) -> Finished:
        events = await _collect(llm, settings, key=key)
        done.append(label)
        assert isinstance(events[-1], Finished)
        return events[-1]

    # Tasks start in creation order: a1 takes the slot, a2 and b1 queue behind it.
    tasks = [asyncio.create_task(run(label, key))
             for label, key in (("a1", "a"), ("a2", "a"), ("b1", "b"))]
    await asyncio.sleep(0)
    assert (llm.scheduler.running, llm.scheduler.waiting) == (1, 2)
    assert llm.scheduler.next_key() == "b"
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    assert done == ["a1", "b1", "a2"]
    assert all(result.usage.completion_tokens > 0 for result in results)


async def test_two_slots_run_two_generations_at_once(make_llm: Factory) -> None:
    llm = make_llm(parallel=2)
    await llm.load()
    settings = GenerationSettings(max_tokens=24, temperature=0)
    busiest = 0

    async def watch() -> None:
        nonlocal busiest
        while True:
            busiest = max(busiest, llm.scheduler.running)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(_collect(llm, settings, key="x"),
                                   _collect(llm, settings, key="y"))
    watcher.cancel()
    assert busiest == 2
    assert all(isinstance(events[-1], Finished) for events in results)


async def test_cancelling_a_stream_frees_its_slot(make_llm: Factory) -> None:
    llm = make_llm(parallel=1)
    first_delta = asyncio.Event()

    async def listen() -> None:
        # About 900 tokens at temperature 0: over ten seconds if it were not stopped.
        async for event in llm.stream(LONG, GenerationSettings(max_tokens=900, temperature=0),
                                      session_key="gone"):
            if isinstance(event, TextDelta):
                first_delta.set()

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(first_delta.wait(), timeout=60)
    listener.cancel()
    for _ in range(200):  # two seconds
        if not llm.scheduler.running:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the generation did not stop promptly")

    reply = await asyncio.wait_for(
        complete(llm, HELLO, GenerationSettings(max_tokens=8, temperature=0)), timeout=30)
    assert reply.usage.completion_tokens > 0


async def test_closing_ends_running_streams_with_an_error(make_llm: Factory) -> None:
    llm = make_llm()
    stream = llm.stream(LONG, GenerationSettings(max_tokens=900, temperature=0))
    assert isinstance(await anext(stream), TextDelta)

    await asyncio.wait_for(llm.aclose(), timeout=5)

    with pytest.raises(ProviderUnavailable, match="shutting down"):
        async for _ in stream:
            pass
    with pytest.raises(ProviderUnavailable, match="shutting down"):
        await complete(llm, HELLO, GenerationSettings(max_tokens=4))


async def test_the_event_loop_keeps_ticking_during_generation(make_llm: Factory) -> None:
    llm = make_llm()
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    await complete(llm, LONG, GenerationSettings(max_tokens=64, temperature=0))
    elapsed = time.monotonic() - started
    ticker.cancel()

    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert max(gaps) < 0.25, f"the loop stalled for {max(gaps):.3f}s"
    assert len(ticks) >= elapsed / 0.05


async def test_a_prompt_longer_than_the_context_window_is_a_provider_error(
    make_llm: Factory,
) -> None:
    llm = make_llm(n_ctx=512)
    long_prompt = [ChatMessage("user", "word " * 700)]
    with pytest.raises(ProviderError, match="context window") as caught:
        await complete(llm, long_prompt, GenerationSettings(max_tokens=8))
    assert caught.value.details["reason"] == "context_overflow"
    assert not caught.value.retryable


def test_from_settings_finds_the_bundled_model(model_path: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedded_context_window=512, embedded_parallel=1)
    llm = EmbeddedLLM.from_settings(settings)
    assert (llm.name, llm.context_window, llm.model) == ("embedded", 512, "smollm2-135m")
    assert llm.count_tokens("twelve chars") == 3  # an estimate until the model is loaded

    missing = Settings(data_dir=tmp_path, embedded_model_path=tmp_path / "absent.gguf")
    with pytest.raises(ProviderUnavailable, match=r"absent\.gguf"):
        EmbeddedLLM.from_settings(missing)


async def test_the_scheduler_prefers_callers_served_least_recently() -> None:
    """No model needed: the grant order of queued requests, checked directly."""
    scheduler = FairScheduler(1)
    order: list[str] = []
    await scheduler.acquire("a")

    async def wait(label: str, key: str) -> None:
        await scheduler.acquire(key)
        order.append(label)
        scheduler.release(key)

    tasks = [asyncio.create_task(wait(label, key))
             for label, key in (("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c"))]
    await asyncio.sleep(0)
    assert scheduler.waiting == 4
    assert scheduler.next_key() == "b"
    scheduler.release("a")
    await asyncio.gather(*tasks)
    assert order == ["b1", "c1", "a2", "a3"]


async def test_json_object_output_is_constrained_to_an_object(make_llm: Factory) -> None:
    llm = make_llm()
    settings = GenerationSettings(max_tokens=96, temperature=0, json_object=True)
    messages = [ChatMessage("user", "Describe a cat in a few words.")]

    reply = await complete(llm, messages, settings)

    assert reply.finish_reason == "stop"
    assert isinstance(json.loads(reply.text), dict)


async def test_a_session_turn_keeps_to_the_callers_max_tokens(model_path: Path,
                                                              tmp_path: Path) -> None:
    """Through the OpenAI gateway's session mode: the caller's 5, not the persona's 400."""
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url_for(tmp_path),
                        embedded_model_path=model_path, embedded_context_window=1024,
                        embedded_parallel=1)
    wordy = {"id": "wordy", "name": "Wordy", "system_prompt": "Answer at great length.",
             "model": {"max_tokens": 400, "temperature": 0}}
    async with open_runtime(settings) as runtime:
        people = await create_people(runtime, MEMBERS)
        await create_global_personas(runtime, [wordy])
        session, _ = await runtime.conversations.open(people["alice"], "wordy")
        request = ChatRequest(model="wordy", messages=(ChatMessage("user", LONG[0].content),),
                              overrides=GenerationOverrides(max_tokens=5),
                              session_id=session.id)
        reply = await runtime.gateway.complete(people["alice"], request)
    assert 0 < reply.usage.completion_tokens <= 5
    assert reply.finish_reason == "length"


async def test_a_request_naming_a_catalogue_model_is_served_by_it(model_path: Path,
                                                                  tmp_path: Path) -> None:
    """As a persona's ``model: {provider: embedded, model: smollm2-135m}`` asks."""
    settings = Settings(data_dir=tmp_path, embedded_context_window=512, embedded_parallel=1)
    llm = EmbeddedLLM.from_settings(settings)
    try:
        reply = await complete(llm, HELLO, GenerationSettings(model="smollm2-135m",
                                                              max_tokens=4))
        assert (reply.provider, reply.model) == ("embedded", "smollm2-135m")
        assert llm.languages_for("smollm2-135m") == frozenset({"en"})
        with pytest.raises(UnknownModel, match="known models: smollm2-135m") as caught:
            await complete(llm, HELLO, GenerationSettings(model="gpt-7", max_tokens=4))
        assert caught.value.status == 400
    finally:
        await llm.aclose()
