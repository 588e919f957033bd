"""Retries, breakers, fallback and deadlines around speech providers, with scripted ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from personae.providers.fake import ScriptedRecogniser, ScriptedSynthesiser
from personae.providers.resilience import CircuitBreaker
from personae.providers.speech import AudioChunk, Voice, VoiceChoice
from personae.providers.speech_registry import SpeechProviders
from personae.providers.speech_resilience import ResilientRecogniser, ResilientSynthesiser

AUDIO = AudioChunk(b"\0\0" * 1600, 16_000)
NOVA = VoiceChoice(voice_id="nova", speed=1.25, language="en")
BOUND = 5.0  # generous: what must end promptly ends well within it


def unavailable(name: str) -> ProviderError:
    return ProviderError(name, "503 overloaded", retryable=True, details={"status": 503})


def unauthorised(name: str) -> ProviderError:
    return ProviderError(name, "401 bad key", retryable=False, details={"status": 401})


def recognisers(*chain: ScriptedRecogniser, retries: int = 2, timeout: float = 10.0,
                breakers: dict[str, CircuitBreaker] | None = None) -> ResilientRecogniser:
    return ResilientRecogniser(chain, breakers or {}, retries=retries, timeout=timeout,
                               backoff_base=0.001)


def synthesisers(*chain: object, retries: int = 2, timeout: float = 10.0,
                 first_chunk_timeout: float | None = None,
                 breakers: dict[str, CircuitBreaker] | None = None) -> ResilientSynthesiser:
    return ResilientSynthesiser(chain, breakers or {}, retries=retries,  # type: ignore[arg-type]
                                timeout=timeout, first_chunk_timeout=first_chunk_timeout,
                                backoff_base=0.001)


async def spoken(stream: AsyncIterator[AudioChunk]) -> list[AudioChunk]:
    return [chunk async for chunk in stream]


async def test_a_503_is_retried_and_the_retry_answers() -> None:
    primary = ScriptedRecogniser([unavailable("a"), "hello"], name="a")
    heard = await recognisers(primary).transcribe(AUDIO, language="en", prompt="earlier")
    assert heard.text == "hello" and len(primary.calls) == 2
    assert primary.calls[1].language == "en" and primary.calls[1].prompt == "earlier"


async def test_a_401_is_not_retried_and_the_next_provider_answers() -> None:
    primary = ScriptedRecogniser([unauthorised("a"), "never"], name="a")
    backup = ScriptedRecogniser(["from the backup"], name="b")
    heard = await recognisers(primary, backup).transcribe(AUDIO)
    assert heard.text == "from the backup" and len(primary.calls) == 1


async def test_every_provider_failing_names_each_of_them() -> None:
    chain = (ScriptedRecogniser([unauthorised("a")], name="a"),
             ScriptedRecogniser([unavailable("b")], name="b"))
    with pytest.raises(ProviderError, match=r"all providers failed: a: 401.*b: 503") as caught:
        await recognisers(*chain, retries=0).transcribe(AUDIO)
    assert caught.value.details["providers"] == ["a", "b"]


async def test_the_breaker_opens_after_repeated_failures_for_every_caller() -> None:
    failing = ScriptedRecogniser([unavailable("a")], name="a")
    shared = {"a": CircuitBreaker(failures=3, reset_seconds=60)}
    with pytest.raises(ProviderError, match="503"):
        await recognisers(failing, breakers=shared).transcribe(AUDIO)
    assert len(failing.calls) == 3 and shared["a"].state == "open"
    another_caller = recognisers(failing, breakers=shared)
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await another_caller.transcribe(AUDIO)
    assert len(failing.calls) == 3  # not asked again


async def test_the_registry_shares_one_breaker_per_name_between_callers() -> None:
    speech = SpeechProviders(Settings(breaker_failures=1, providers={
        "bad": ProviderConfig(kind="openai", max_retries=0)}))
    failing = ScriptedRecogniser([unavailable("bad")], name="bad")
    speech.register_recogniser("bad", failing)
    with pytest.raises(ProviderError, match="503"):
        await speech.recogniser("bad").transcribe(AUDIO)
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await speech.recogniser("bad").transcribe(AUDIO)
    assert len(failing.calls) == 1


async def test_a_recogniser_past_its_deadline_is_left_for_the_next() -> None:
    slow = ScriptedRecogniser(["too late"], name="slow", delay=60)
    backup = ScriptedRecogniser(["in time"], name="b")
    async with asyncio.timeout(BOUND):
        heard = await recognisers(slow, backup, timeout=0.05).transcribe(AUDIO)
    assert heard.text == "in time" and len(slow.calls) == 1  # a missed deadline: no retry


def test_the_chain_recognises_the_union_of_its_languages() -> None:
    english = ScriptedRecogniser([], languages=frozenset({"en"}), name="en")
    hindi = ScriptedRecogniser([], languages=frozenset({"hi"}), name="hi")
    anything = ScriptedRecogniser([], name="any")
    assert recognisers(english, hindi).languages() == {"en", "hi"}
    assert recognisers(english, anything).languages() is None


async def test_synthesis_is_retried_before_its_first_chunk() -> None:
    voice = ScriptedSynthesiser(name="a", ms_per_char=50)
    voice.failures.append(unavailable("a"))
    chunks = await spoken(synthesisers(voice).synthesize("Hello there.", voice=NOVA))
    assert sum(chunk.duration_ms for chunk in chunks) == pytest.approx(600)
    assert [call.voice for call in voice.calls] == [NOVA, NOVA]


async def test_a_failed_synthesiser_falls_back_without_its_voice_id() -> None:
    primary = ScriptedSynthesiser(name="a")
    primary.failures.extend([unauthorised("a")])
    backup = ScriptedSynthesiser(name="b", rate=22_050)
    chunks = await spoken(synthesisers(primary, backup).synthesize("Hi.", voice=NOVA))
    assert chunks and {chunk.sample_rate for chunk in chunks} == {22_050}
    assert backup.calls[0].voice == VoiceChoice(None, 1.25, "en")


async def test_no_failover_once_the_first_chunk_went_out() -> None:
    primary = ScriptedSynthesiser(name="a")
    primary.failures_after_first.append(unavailable("a"))
    backup = ScriptedSynthesiser(name="b")
    stream = synthesisers(primary, backup).synthesize("A sentence to speak.", voice=NOVA)
    first = await anext(stream)
    assert first.pcm
    with pytest.raises(ProviderError, match="503"):
        await anext(stream)
    assert backup.calls == []


async def test_a_first_chunk_too_slow_moves_on_to_the_next() -> None:
    slow = ScriptedSynthesiser(name="slow", delay=60)
    backup = ScriptedSynthesiser(name="b")
    async with asyncio.timeout(BOUND):
        chunks = await spoken(synthesisers(slow, backup, first_chunk_timeout=0.05)
                              .synthesize("Hi.", voice=NOVA))
    assert chunks and len(backup.calls) == 1 and slow.closed_streams == 1


class Stalling:
    """Speaks one chunk, then nothing more until closed."""

    name = "stalling"

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def voices(self) -> Sequence[Voice] | None:
        return None

    def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        return self._speak()

    async def _speak(self) -> AsyncIterator[AudioChunk]:
        try:
            yield AUDIO
            await asyncio.Event().wait()
        finally:
            self.closed.set()

    async def aclose(self) -> None:
        return None


async def test_a_stall_after_the_first_chunk_times_out_and_closes_the_stream() -> None:
    stalling = Stalling()
    stream = synthesisers(stalling, timeout=0.05).synthesize("Hi.", voice=NOVA)
    async with asyncio.timeout(BOUND):
        assert await anext(stream) == AUDIO
        with pytest.raises(ProviderTimeout, match="stalled"):
            await anext(stream)
    assert stalling.closed.is_set()


async def test_closing_the_stream_closes_the_providers_stream() -> None:
    voice = ScriptedSynthesiser(name="a")
    stream = synthesisers(voice).synthesize("A long sentence to speak in full.", voice=NOVA)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert voice.closed_streams == 1 and voice.chunks_sent == 1


def test_the_voices_are_the_primarys() -> None:
    offered = [Voice("joe", "en-US", "male", "neural", "a")]
    chain = synthesisers(ScriptedSynthesiser(name="a", voices=offered),
                         ScriptedSynthesiser(name="b"))
    assert chain.voices() == offered and chain.name == "a"
