"""Retries, deadlines, circuit breakers and fallback, against real loopback servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

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
from personae.providers.fake import FakeOpenAIServer
from personae.providers.openai_compat import OpenAICompatLLM
from personae.providers.registry import ProviderRegistry
from personae.providers.resilience import CircuitBreaker, ResilientLLM
from personae.providers.streams import complete

HELLO = [ChatMessage("user", "hello there world")]
SETTINGS = GenerationSettings()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BrokenLLM:
    """An in-process provider with a bug, to show it cannot escape the fallback."""

    name = "broken"
    context_window = 1024

    async def stream(self, messages: Sequence[ChatMessage],
                     settings: GenerationSettings) -> AsyncIterator[StreamEvent]:
        raise RuntimeError("boom")
        yield TextDelta("unreachable")

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def primary() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(reply="from primary") as server:
        yield server


@pytest.fixture
async def secondary() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(reply="from secondary") as server:
        yield server


@pytest.fixture
async def providers() -> AsyncIterator[list[OpenAICompatLLM]]:
    built: list[OpenAICompatLLM] = []
    yield built
    for llm in built:
        await llm.aclose()


@pytest.fixture
def connect(providers: list[OpenAICompatLLM]) -> Any:
    def build(name: str, base_url: str, timeout: float = 5.0) -> OpenAICompatLLM:
        config = ProviderConfig(kind="openai", base_url=base_url, model="fake-model",
                                timeout_seconds=timeout)
        providers.append(OpenAICompatLLM(name, config))
        return providers[-1]
    return build


def resilient(chain: list[LLM], *, retries: int = 2, timeout: float = 5.0,
              breakers: dict[str, CircuitBreaker] | None = None,
              first_token_timeout: float | None = None) -> ResilientLLM:
    return ResilientLLM(chain, breakers or {}, retries=retries, timeout=timeout,
                        backoff_base=0.01, first_token_timeout=first_token_timeout)


async def drain(stream: AsyncIterator[StreamEvent], seen: list[StreamEvent]) -> None:
    """Consume a stream, keeping what arrived before any failure."""
    async for event in stream:
        seen.append(event)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


# -- CircuitBreaker -------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_rejects() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, reset_seconds=30, clock=clock)
    for _ in range(2):
        breaker.acquire("groq")
        breaker.record_failure()
    breaker.acquire("groq")
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        breaker.acquire("groq")
        breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 10
    with pytest.raises(ProviderUnavailable, match=r"groq: circuit open .*retry after 20\.0s"):
        breaker.acquire("groq")


def test_half_open_lets_exactly_one_probe_and_its_success_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=5, clock=clock)
    breaker.acquire("p")
    breaker.record_failure()
    clock.now += 5
    breaker.acquire("p")
    assert breaker.state == "half_open"
    with pytest.raises(ProviderUnavailable, match="probe is in progress"):
        breaker.acquire("p")
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.acquire("p")


def test_failed_probe_reopens_and_released_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=5, clock=clock)
    breaker.acquire("p")
    breaker.record_failure()
    clock.now += 5
    breaker.acquire("p")
    breaker.record_failure()
    assert breaker.state == "open" and breaker.retry_after() == 5
    clock.now += 5
    breaker.acquire("p")
    breaker.release()  # the probe was cancelled: another caller may probe
    breaker.acquire("p")
    assert breaker.state == "half_open"


# -- ResilientLLM ---------------------------------------------------------------------


async def test_retryable_failure_is_retried(primary: FakeOpenAIServer, connect: Any) -> None:
    primary.fail_next(1, status=503)
    completion = await complete(resilient([connect("p", primary.base_url)]), HELLO, SETTINGS)
    assert completion.text == "from primary"
    assert primary.chat_count == 2


async def test_bad_request_is_not_retried_and_its_message_surfaces(
        primary: FakeOpenAIServer, connect: Any) -> None:
    primary.fail_always(status=400, message="unknown model 'nope'")
    with pytest.raises(ProviderError, match="unknown model 'nope'") as caught:
        await complete(resilient([connect("p", primary.base_url)]), HELLO, SETTINGS)
    assert caught.value.status == 502 and not caught.value.retryable
    assert primary.chat_count == 1


async def test_breaker_opens_then_rejects_fast_then_probe_closes(
        primary: FakeOpenAIServer, connect: Any) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, reset_seconds=30, clock=clock)
    llm = resilient([connect("p", primary.base_url)], retries=0, breakers={"p": breaker})
    primary.fail_always(status=500)
    for _ in range(2):
        with pytest.raises(ProviderError):
            await complete(llm, HELLO, SETTINGS)
    assert breaker.state == "open"
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await complete(llm, HELLO, SETTINGS)
    assert time.monotonic() - started < 0.1
    assert primary.chat_count == 2
    primary.reset(reply="healthy again")
    clock.now += 30
    assert (await complete(llm, HELLO, SETTINGS)).text == "healthy again"
    assert breaker.state == "closed"


async def test_breaker_stops_retries_once_it_opens(primary: FakeOpenAIServer,
                                                   connect: Any) -> None:
    breaker = CircuitBreaker(failures=2, reset_seconds=30)
    llm = resilient([connect("p", primary.base_url)], retries=5, breakers={"p": breaker})
    primary.fail_always(status=503)
    with pytest.raises(ProviderError, match="503") as caught:
        await complete(llm, HELLO, SETTINGS)
    assert primary.chat_count == 2
    assert "circuit" not in caught.value.message  # the real cause is reported


async def test_falls_back_to_the_next_provider(primary: FakeOpenAIServer,
                                               secondary: FakeOpenAIServer,
                                               connect: Any) -> None:
    primary.fail_always(status=503)
    llm = resilient([connect("first", primary.base_url), connect("second", secondary.base_url)],
                    retries=1)
    completion = await complete(llm, HELLO, GenerationSettings(model="primary-only-model"))
    assert (completion.text, completion.provider) == ("from secondary", "second")
    assert primary.chat_count == 2
    assert secondary.last_request.model == "fake-model"  # its own model, not the primary's


async def test_open_breaker_skips_straight_to_the_fallback(primary: FakeOpenAIServer,
                                                           secondary: FakeOpenAIServer,
                                                           connect: Any) -> None:
    breaker = CircuitBreaker(failures=1, reset_seconds=30)
    breaker.acquire("first")
    breaker.record_failure()
    llm = resilient([connect("first", primary.base_url), connect("second", secondary.base_url)],
                    breakers={"first": breaker})
    assert (await complete(llm, HELLO, SETTINGS)).provider == "second"
    assert primary.chat_count == 0


async def test_all_failed_names_every_provider_with_the_last_status(
        primary: FakeOpenAIServer, connect: Any) -> None:
    primary.fail_always(status=500)
    llm = resilient([connect("groq", primary.base_url), connect("local", closed_port_url())],
                    retries=0)
    with pytest.raises(ProviderUnavailable) as caught:
        await complete(llm, HELLO, SETTINGS)
    message = caught.value.message
    assert message.startswith("all providers failed: groq: 500 ")
    assert "; local: connection failed" in message
    assert caught.value.status == 503
    assert caught.value.details["providers"] == ["groq", "local"]


async def test_all_failed_keeps_502_for_upstream_errors(primary: FakeOpenAIServer,
                                                        secondary: FakeOpenAIServer,
                                                        connect: Any) -> None:
    primary.fail_always(status=503)
    secondary.fail_always(status=500)
    llm = resilient([connect("a", primary.base_url), connect("b", secondary.base_url)],
                    retries=0)
    with pytest.raises(ProviderError) as caught:
        await complete(llm, HELLO, SETTINGS)
    assert type(caught.value) is ProviderError and caught.value.status == 502
    assert "a: 503" in caught.value.message and "b: 500" in caught.value.message


async def test_hanging_upstream_times_out_within_the_deadline(primary: FakeOpenAIServer,
                                                              connect: Any) -> None:
    primary.hang = True
    llm = resilient([connect("p", primary.base_url, timeout=30)], retries=3, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"no response within 0\.5s") as caught:
        await complete(llm, HELLO, SETTINGS)
    assert time.monotonic() - started < 0.5 + 1
    assert caught.value.status == 504


async def test_all_hanging_gives_504_naming_both(primary: FakeOpenAIServer,
                                                 secondary: FakeOpenAIServer,
                                                 connect: Any) -> None:
    primary.hang = secondary.hang = True
    llm = resilient([connect("a", primary.base_url), connect("b", secondary.base_url)],
                    timeout=0.3)
    with pytest.raises(ProviderTimeout) as caught:
        await complete(llm, HELLO, SETTINGS)
    assert caught.value.status == 504
    assert caught.value.message.startswith("all providers failed: a: no response")


async def test_failure_after_first_delta_propagates_without_retry_or_fallback(
        primary: FakeOpenAIServer, secondary: FakeOpenAIServer, connect: Any) -> None:
    primary.interrupt_after = 1
    llm = resilient([connect("a", primary.base_url), connect("b", secondary.base_url)],
                    retries=3)
    seen: list[StreamEvent] = []
    with pytest.raises(ProviderError) as caught:
        await drain(llm.stream(HELLO, SETTINGS), seen)
    assert seen == [TextDelta("from")]
    assert caught.value.provider == "a"
    assert (primary.chat_count, secondary.chat_count) == (1, 0)


async def test_stall_after_first_delta_is_a_timeout(primary: FakeOpenAIServer,
                                                    connect: Any) -> None:
    primary.token_delay = 5
    llm = resilient([connect("p", primary.base_url, timeout=30)], timeout=0.3)
    seen: list[StreamEvent] = []
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="stalled"):
        await drain(llm.stream(HELLO, SETTINGS), seen)
    assert seen == [TextDelta("from")]
    assert time.monotonic() - started < 1.3


async def test_stopping_early_closes_the_stream_and_counts_as_healthy(
        primary: FakeOpenAIServer, connect: Any) -> None:
    primary.token_delay = 5  # the reply is still streaming when the caller stops
    breaker = CircuitBreaker(failures=1, reset_seconds=30)
    llm = resilient([connect("p", primary.base_url)], breakers={"p": breaker})
    stream = llm.stream(HELLO, SETTINGS)
    assert await anext(stream) == TextDelta("from")
    await stream.aclose()  # type: ignore[attr-defined]
    assert breaker.state == "closed"


async def test_a_provider_bug_becomes_a_provider_error_and_falls_back(
        secondary: FakeOpenAIServer, connect: Any) -> None:
    llm = resilient([BrokenLLM(), connect("second", secondary.base_url)])
    completion = await complete(llm, HELLO, SETTINGS)
    assert completion.provider == "second"


async def test_finished_names_the_provider_that_answered(primary: FakeOpenAIServer,
                                                         connect: Any) -> None:
    events = [event async for event in resilient([connect("p", primary.base_url)]).stream(
        HELLO, SETTINGS)]
    assert isinstance(events[-1], Finished)
    assert events[-1].provider == "p" and events[-1].usage != Usage()


# -- first-token deadline, failover, half-open --------------------------------------------

FIRST_TOKEN = 0.5  # the first-token deadline in these tests
WHOLE = 20.0  # the whole deadline: never reached when failover works
MARGIN = 1.5  # generous: scheduling on a busy machine, not a performance claim


class Watched:
    """A real provider, noting each call: the test awaits a call instead of guessing."""

    def __init__(self, llm: LLM) -> None:
        self.llm, self.name, self.context_window = llm, llm.name, llm.context_window
        self.called = asyncio.Event()

    def stream(self, messages: Sequence[ChatMessage],
               settings: GenerationSettings) -> AsyncIterator[StreamEvent]:
        self.called.set()
        return self.llm.stream(messages, settings)

    def count_tokens(self, text: str) -> int:
        return self.llm.count_tokens(text)

    async def aclose(self) -> None:
        return None


def opened_then_reset(clock: Clock) -> CircuitBreaker:
    """A breaker that opened on one failure and whose reset time has just passed."""
    breaker = CircuitBreaker(failures=1, reset_seconds=30, clock=clock)
    breaker.acquire("first")
    breaker.record_failure()
    clock.now += 30
    return breaker


async def timed(llm: ResilientLLM) -> tuple[Any, float]:
    """The completion (or the error) and how long it took."""
    started = time.monotonic()
    try:
        outcome: Any = await complete(llm, HELLO, SETTINGS)
    except ProviderError as exc:
        outcome = exc
    return outcome, time.monotonic() - started


async def test_hanging_primary_fails_over_within_the_first_token_deadline(
        primary: FakeOpenAIServer, secondary: FakeOpenAIServer, connect: Any) -> None:
    primary.hang = True
    llm = resilient([connect("first", primary.base_url, timeout=60),
                     connect("second", secondary.base_url)],
                    retries=2, timeout=WHOLE, first_token_timeout=FIRST_TOKEN)
    completion, took = await timed(llm)
    assert (completion.text, completion.provider) == ("from secondary", "second")
    assert FIRST_TOKEN <= took < FIRST_TOKEN + MARGIN
    assert primary.chat_count == 1  # a provider that missed the deadline is not asked again


async def test_slow_first_byte_without_fallback_is_a_timeout_within_the_deadline(
        connect: Any) -> None:
    async with FakeOpenAIServer(latency=30) as slow:
        llm = resilient([connect("slow", slow.base_url, timeout=60)], retries=3,
                        timeout=WHOLE, first_token_timeout=FIRST_TOKEN)
        error, took = await timed(llm)
        assert isinstance(error, ProviderTimeout) and error.status == 504
        assert f"no response within {FIRST_TOKEN:g}s" in error.message
        assert took < FIRST_TOKEN + MARGIN
        assert slow.chat_count == 1


async def test_concurrent_callers_on_a_hang_fail_in_time_then_the_breaker_fails_fast(
        primary: FakeOpenAIServer, connect: Any) -> None:
    primary.hang = True
    breaker = CircuitBreaker(failures=5, reset_seconds=30)
    llm = resilient([connect("p", primary.base_url, timeout=60)], breakers={"p": breaker},
                    timeout=WHOLE, first_token_timeout=FIRST_TOKEN)
    outcomes = await asyncio.gather(*(timed(llm) for _ in range(5)))
    assert all(isinstance(error, ProviderTimeout) for error, _ in outcomes)
    assert max(took for _, took in outcomes) < FIRST_TOKEN + MARGIN
    assert breaker.state == "open"
    refused, took = await timed(llm)
    assert isinstance(refused, ProviderUnavailable) and refused.status == 503
    assert 0 < refused.details["retry_after"] <= 30
    assert took < 0.5 and primary.chat_count == 5


async def test_half_open_admits_one_probe_and_sends_the_rest_to_the_fallback(
        primary: FakeOpenAIServer, secondary: FakeOpenAIServer, connect: Any) -> None:
    primary.hang = True
    breaker = opened_then_reset(Clock())
    first = Watched(connect("first", primary.base_url, timeout=60))
    llm = resilient([first, connect("second", secondary.base_url)],
                    breakers={"first": breaker}, timeout=WHOLE,
                    first_token_timeout=FIRST_TOKEN)
    probe = asyncio.create_task(timed(llm))
    await first.called.wait()
    assert breaker.state == "half_open"
    others = await asyncio.gather(*(timed(llm) for _ in range(4)))
    assert [completion.provider for completion, _ in others] == ["second"] * 4
    assert max(took for _, took in others) < FIRST_TOKEN  # they never waited on the probe
    completion, took = await probe
    assert completion.provider == "second" and took < FIRST_TOKEN + MARGIN
    assert breaker.state == "open"  # the probe failed: the circuit opens again
    assert primary.chat_count == 1


async def test_half_open_without_fallback_refuses_the_others_with_retry_after(
        primary: FakeOpenAIServer, connect: Any) -> None:
    primary.hang = True
    breaker = opened_then_reset(Clock())
    first = Watched(connect("first", primary.base_url, timeout=60))
    llm = resilient([first], breakers={"first": breaker}, timeout=WHOLE,
                    first_token_timeout=FIRST_TOKEN)
    probe = asyncio.create_task(timed(llm))
    await first.called.wait()
    refused, took = await timed(llm)
    assert isinstance(refused, ProviderUnavailable) and "probe is in progress" in refused.message
    assert refused.details["retry_after"] > 0 and took < FIRST_TOKEN
    assert isinstance((await probe)[0], ProviderTimeout)


async def test_the_first_token_deadline_does_not_cut_a_reply_that_started(
        primary: FakeOpenAIServer, secondary: FakeOpenAIServer, connect: Any) -> None:
    primary.token_delay = FIRST_TOKEN * 1.5  # each later gap is longer than the first token
    llm = resilient([connect("first", primary.base_url), connect("second", secondary.base_url)],
                    timeout=WHOLE, first_token_timeout=FIRST_TOKEN)
    completion = await complete(llm, HELLO, SETTINGS)
    assert (completion.text, completion.provider) == ("from primary", "first")
    assert secondary.chat_count == 0


async def test_every_fallback_is_tried_within_the_one_whole_deadline(
        primary: FakeOpenAIServer, secondary: FakeOpenAIServer, connect: Any) -> None:
    primary.hang = secondary.hang = True
    llm = resilient([connect("a", primary.base_url, timeout=60),
                     connect("b", secondary.base_url, timeout=60)],
                    timeout=0.8, first_token_timeout=FIRST_TOKEN)
    error, took = await timed(llm)
    assert isinstance(error, ProviderTimeout)
    assert error.details["providers"] == ["a", "b"]
    assert took < 0.8 + MARGIN


async def test_all_failed_keeps_the_soonest_retry_after(primary: FakeOpenAIServer,
                                                        secondary: FakeOpenAIServer,
                                                        connect: Any) -> None:
    clock = Clock()
    breakers = {name: CircuitBreaker(failures=1, reset_seconds=reset, clock=clock)
                for name, reset in (("a", 30), ("b", 10))}
    for name, breaker in breakers.items():
        breaker.acquire(name)
        breaker.record_failure()
    llm = resilient([connect("a", primary.base_url), connect("b", secondary.base_url)],
                    breakers=breakers)
    error, _ = await timed(llm)
    assert isinstance(error, ProviderUnavailable) and error.details["retry_after"] == 10


def test_the_first_token_deadline_is_configured_per_provider(tmp_path: Path) -> None:
    assert ProviderConfig(kind="openai").first_token_timeout_seconds < \
        ProviderConfig(kind="openai").timeout_seconds
    settings = Settings(data_dir=tmp_path, providers={"groq": ProviderConfig(
        kind="scripted", timeout_seconds=40, first_token_timeout_seconds=4)})
    llm, _ = ProviderRegistry(settings).resolve(ModelChoice(provider="groq"))
    assert isinstance(llm, ResilientLLM)
    assert (llm.first_token_timeout, llm.timeout) == (4, 40)


# -- the stall deadline between events ------------------------------------------------


class GatedLLM:
    """Sends each delta when the test releases it; never finishes on its own."""

    name = "gated"
    context_window = 1024

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = [asyncio.Event() for _ in range(3)]
        self.closed = asyncio.Event()

    async def stream(self, messages: Sequence[ChatMessage],
                     settings: GenerationSettings) -> AsyncIterator[StreamEvent]:
        try:
            for index, gate in enumerate(self.gates):
                await gate.wait()
                yield TextDelta(f"part{index}")
            await asyncio.Event().wait()  # then stalls
        finally:
            self.closed.set()

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def aclose(self) -> None:
        return None


async def test_time_the_caller_takes_between_events_is_not_a_stall() -> None:
    gated = GatedLLM()
    llm = resilient([gated], timeout=0.3)
    gated.gates[0].set()
    stream = aiter(llm.stream(HELLO, SETTINGS))
    assert await anext(stream) == TextDelta("part0")
    await asyncio.sleep(0.5)  # the caller is busy for longer than the stall deadline
    gated.gates[1].set()
    assert await anext(stream) == TextDelta("part1")
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"stalled: no output for 0\.3s"):
        await anext(stream)  # gate 2 stays shut: a real stall, counted from this wait
    assert 0.25 < time.monotonic() - started < 1.3
    assert gated.closed.is_set()


async def test_cancelling_the_caller_during_a_wait_is_not_taken_for_a_stall() -> None:
    gated = GatedLLM()
    gated.gates[0].set()
    breaker = CircuitBreaker(failures=1, reset_seconds=30)
    llm = resilient([gated], timeout=5, breakers={"gated": breaker})
    stream = aiter(llm.stream(HELLO, SETTINGS))
    assert await anext(stream) == TextDelta("part0")
    waiting = asyncio.create_task(anext(stream))
    await asyncio.sleep(0)  # let it start waiting for the next event
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert breaker.state == "closed"  # no verdict against the provider
    await stream.aclose()  # type: ignore[attr-defined]
    assert gated.closed.is_set()
