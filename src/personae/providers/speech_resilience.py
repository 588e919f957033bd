"""Timeouts, retries, circuit breakers and fallback around speech providers.

The same policy as language models (:mod:`.resilience`), and its classification of
failures: a 503 is retried with backoff, a 401 is not, a provider that keeps failing
is skipped at once by its breaker (shared by every caller), and then the next one in
the chain is asked. A recogniser answers in one piece, so every attempt may fail over.
A synthesiser streams audio: once its first chunk has gone out (the listener may be
hearing it) a failure propagates, exactly as with text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import replace
from typing import TypeVar

from personae.errors import ProviderError, ProviderTimeout
from personae.providers.resilience import (
    CircuitBreaker,
    DeadlineMissed,
    Retrying,
    _NoBreaker,
    _record,
    all_failed,
    unexpected,
)
from personae.providers.speech import (
    AudioChunk,
    SpeechRecogniser,
    SpeechSynthesiser,
    Transcript,
    Voice,
    VoiceChoice,
)
from personae.providers.streams import aclose_stream

T = TypeVar("T")
Started = tuple[AsyncIterator[AudioChunk], AudioChunk | None]  # a stream and its first chunk
CLOSE_BOUND_SECONDS = 5.0  # closing an abandoned stream must not hang the caller


async def _judged(provider: str, breaker: CircuitBreaker, work: Awaitable[T]) -> T:
    """Run one admitted attempt and give the breaker its verdict."""
    try:
        result = await work
    except ProviderError as exc:
        _record(breaker, exc)
        raise
    except Exception as exc:
        breaker.record_failure()
        raise unexpected(provider, exc) from exc
    except BaseException:  # cancelled: no verdict on the provider
        breaker.release()
        raise
    breaker.record_success()
    return result


async def _bounded(work: Awaitable[T], bound: float, provider: str, limit: float) -> T:
    try:
        async with asyncio.timeout(bound):
            return await work
    except TimeoutError:
        raise DeadlineMissed(provider, f"no response within {limit:g}s",
                             retryable=True) from None


class ResilientRecogniser:
    """A :class:`SpeechRecogniser` that tries a chain of recognisers, primary first.

    Each attempt is bounded by ``timeout`` seconds (a recogniser that missed it is not
    asked again in the same call); retryable failures are retried ``retries`` times
    with backoff. The recognisers belong to whoever built them: :meth:`aclose` leaves
    them open.
    """

    def __init__(self, chain: Sequence[SpeechRecogniser], breakers: dict[str, CircuitBreaker],
                 retries: int, timeout: float, backoff_base: float = 0.2,
                 backoff_max: float = 5.0) -> None:
        if not chain:
            raise ValueError("ResilientRecogniser needs at least one recogniser")
        self.chain = list(chain)
        self.breakers = breakers
        self.timeout = timeout
        self._retrying = Retrying(retries, backoff_base, backoff_max)
        self.name = self.chain[0].name

    def languages(self) -> frozenset[str] | None:
        """What any recogniser of the chain handles (None: any language)."""
        known: set[str] = set()
        for recogniser in self.chain:
            languages = recogniser.languages()
            if languages is None:
                return None
            known |= languages
        return frozenset(known)

    async def transcribe(self, audio: AudioChunk, *, language: str | None = None,
                         prompt: str | None = None) -> Transcript:
        failures: list[ProviderError] = []
        for recogniser in self.chain:
            breaker = self.breakers.get(recogniser.name) or _NoBreaker()

            def attempt(left: float, recogniser: SpeechRecogniser = recogniser,
                        breaker: CircuitBreaker = breaker) -> Awaitable[Transcript]:
                work = recogniser.transcribe(audio, language=language, prompt=prompt)
                return _judged(recogniser.name, breaker, _bounded(
                    work, min(left, self.timeout), recogniser.name, self.timeout))

            deadline = time.monotonic() + self.timeout * (1 + self._retrying.retries)
            try:
                return await self._retrying.run(recogniser.name, breaker, deadline, attempt)
            except ProviderError as exc:
                failures.append(exc)
        raise all_failed(failures)

    async def aclose(self) -> None:
        return None


class ResilientSynthesiser:
    """A :class:`SpeechSynthesiser` that tries a chain of synthesisers, primary first.

    Getting the audio started has two deadlines, as with text: each attempt's first
    chunk within ``first_chunk_timeout`` seconds, all attempts within ``timeout``,
    which also bounds every later gap between chunks. Fallbacks get the voice id
    cleared (it names a voice of the primary) and keep the speed and language.
    Closing the stream closes the provider's stream, so its work stops.
    """

    def __init__(self, chain: Sequence[SpeechSynthesiser],
                 breakers: dict[str, CircuitBreaker], retries: int, timeout: float,
                 first_chunk_timeout: float | None = None, backoff_base: float = 0.2,
                 backoff_max: float = 5.0) -> None:
        if not chain:
            raise ValueError("ResilientSynthesiser needs at least one synthesiser")
        self.chain = list(chain)
        self.breakers = breakers
        self.timeout = timeout
        self.first_chunk_timeout = min(first_chunk_timeout or timeout, timeout)
        self._retrying = Retrying(retries, backoff_base, backoff_max)
        self.name = self.chain[0].name

    def voices(self) -> Sequence[Voice] | None:
        return self.chain[0].voices()

    def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        return self._speak(text, voice)

    async def _speak(self, text: str, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        failures: list[ProviderError] = []
        deadline = time.monotonic() + self.timeout
        for index, synthesiser in enumerate(self.chain):
            wanted = voice if index == 0 else replace(voice, voice_id=None)
            breaker = self.breakers.get(synthesiser.name) or _NoBreaker()

            def attempt(left: float, synthesiser: SpeechSynthesiser = synthesiser,
                        voice: VoiceChoice = wanted,
                        breaker: CircuitBreaker = breaker) -> Awaitable[Started]:
                return _judged(synthesiser.name, breaker,
                               self._first(synthesiser, text, voice, left))

            try:
                stream, chunk = await self._retrying.run(synthesiser.name, breaker,
                                                         deadline, attempt)
            except ProviderError as exc:
                failures.append(exc)
                continue
            try:
                while chunk is not None:  # relayed here: a nested generator would not
                    yield chunk           # be closed with this one
                    chunk = await _next_chunk(stream, synthesiser.name, self.timeout)
            except ProviderError as exc:
                _record(breaker, exc)
                raise
            finally:
                await _close(stream)
            return
        raise all_failed(failures)

    async def _first(self, synthesiser: SpeechSynthesiser, text: str, voice: VoiceChoice,
                     left: float) -> Started:
        """Open one stream and wait for its first chunk, within the first deadline."""
        bound, limit = ((self.first_chunk_timeout, self.first_chunk_timeout)
                        if self.first_chunk_timeout < left else (left, self.timeout))
        stream = aiter(synthesiser.synthesize(text, voice=voice))
        try:
            first = await _bounded(_first_chunk(stream, synthesiser.name), bound,
                                   synthesiser.name, limit)
        except BaseException:
            await _close(stream)
            raise
        return stream, first

    async def aclose(self) -> None:
        return None


async def _first_chunk(stream: AsyncIterator[AudioChunk], provider: str) -> AudioChunk:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        raise ProviderError(provider, "the speech stream ended without audio",
                            retryable=True) from None


async def _next_chunk(stream: AsyncIterator[AudioChunk], provider: str,
                      gap: float) -> AudioChunk | None:
    """The stream's next chunk within ``gap`` seconds of asking; None at its end."""
    try:
        async with asyncio.timeout(gap):
            return await anext(stream)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        raise ProviderTimeout(provider, f"stalled: no audio for {gap:g}s",
                              retryable=True) from None
    except ProviderError:
        raise
    except Exception as exc:
        raise unexpected(provider, exc) from exc


async def _close(stream: AsyncIterator[AudioChunk]) -> None:
    try:
        async with asyncio.timeout(CLOSE_BOUND_SECONDS):
            await aclose_stream(stream)
    except (TimeoutError, ProviderError):
        pass
