"""Cloud speech over OpenAI's audio protocol: OpenAI, Groq, or any compatible server.

``POST {base_url}/audio/transcriptions`` (multipart: a WAV of the utterance) hears,
``POST {base_url}/audio/speech`` (JSON) speaks. A provider configured for chat
(``{"kind": "openai", "base_url", "api_key"}``) serves both, with
``transcription_model`` and ``speech_model`` naming the models. Requests go over
aiohttp like the chat client (:mod:`.chat_client`: a session per event loop, its
error classification), with no retries here: :mod:`.speech_resilience` owns them.

Speech is asked for as ``pcm`` (raw 16-bit mono at 24 kHz) and handed on as the bytes
arrive; a server that answers a WAV file instead is read whole and parsed.
"""

from __future__ import annotations

import io
import json
import math
import os
import wave
from array import array
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import langcodes
from yarl import URL

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError
from personae.providers.chat_client import (
    DEFAULT_BASE_URL,
    TRANSPORT_ERRORS,
    LoopSessions,
    client_headers,
    map_error,
    post_for_json,
    status_error,
    unexpected_reply,
)
from personae.providers.speech import (
    SAMPLE_WIDTH,
    AudioChunk,
    Transcript,
    Voice,
    VoiceChoice,
    wav_bytes,
)

OPENAI_PCM_RATE = 24_000  # what OpenAI's ``pcm`` speech format is
DEFAULT_VOICE = "alloy"
WAV_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
READ_BYTES = 16 * 1024  # at most this much audio waits for one chunk
REFUSED_FORMAT = ("response_format", "verbose_json")  # words of a server refusing it


def build_recogniser(name: str, config: ProviderConfig, settings: Settings) -> OpenAIRecogniser:
    """The ``openai`` kind's speech-to-text factory."""
    return OpenAIRecogniser(name, config)


def build_synthesiser(name: str, config: ProviderConfig,
                      settings: Settings) -> OpenAISynthesiser:
    """The ``openai`` kind's text-to-speech factory."""
    return OpenAISynthesiser(name, config)


class _AudioClient:
    """One server's audio endpoints: its base URL, key and per-loop sessions.

    Without ``base_url``, ``OPENAI_BASE_URL`` or OpenAI's own API is used; without a
    key none is sent (and ``OPENAI_API_KEY`` is never sent to a server it was not
    configured for), exactly as for chat.
    """

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.provider = name
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base_url.rstrip("/")
        key = config.api_key.get_secret_value() if config.api_key else None
        timeout = config.timeout_seconds
        self._sessions = LoopSessions(
            client_headers(key),
            aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout,
                                  sock_read=timeout),
            config.max_connections)

    def url(self, path: str) -> URL:
        return URL(f"{self.base_url}/{path}")

    def session(self) -> aiohttp.ClientSession:
        return self._sessions.get()

    async def aclose(self) -> None:
        await self._sessions.aclose()


class OpenAIRecogniser:
    """A :class:`~personae.providers.speech.SpeechRecogniser` over
    ``/audio/transcriptions``: any language its model knows (``languages()`` None)."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.model = config.transcription_model
        self._client = _AudioClient(name, config)
        self._format = "verbose_json"  # "json" once the server refused it

    def languages(self) -> frozenset[str] | None:
        return None

    async def transcribe(self, audio: AudioChunk, *, language: str | None = None,
                         prompt: str | None = None) -> Transcript:
        wav = wav_bytes(audio)
        while True:
            response_format = self._format
            try:
                body = await self._post(wav, response_format, language, prompt)
            except ProviderError as exc:
                if response_format == "json" or not _refuses_format(exc):
                    raise
                self._format = "json"  # the server only speaks plain JSON: ask it so
                continue
            return self._transcript(body, audio, language)

    async def _post(self, wav: bytes, response_format: str, language: str | None,
                    prompt: str | None) -> Any:
        form = aiohttp.FormData()
        form.add_field("file", wav, filename="speech.wav", content_type="audio/wav")
        form.add_field("model", self.model)
        form.add_field("response_format", response_format)
        if language:
            form.add_field("language", primary_subtag(language))
        if prompt:
            form.add_field("prompt", prompt)
        return await post_for_json(self._client.session(),
                                   self._client.url("audio/transcriptions"), form, self.name)

    def _transcript(self, body: Any, audio: AudioChunk, language: str | None) -> Transcript:
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise unexpected_reply(self.name, json.dumps(body).encode())
        heard = _language_tag(body.get("language")) or language
        return Transcript(body["text"].strip(), heard, _confidence(body.get("segments")),
                          audio.duration_ms, self.name, self.model)

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAISynthesiser:
    """A :class:`~personae.providers.speech.SpeechSynthesiser` over ``/audio/speech``:
    any voice its service knows (``voices()`` None; the default is ``alloy``)."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.model = config.speech_model
        self._client = _AudioClient(name, config)

    def voices(self) -> Sequence[Voice] | None:
        return None

    def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        return self._speak(text, voice)

    async def _speak(self, text: str, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        body = {"model": self.model, "input": text, "voice": voice.voice_id or DEFAULT_VOICE,
                "speed": voice.speed, "response_format": "pcm"}
        try:
            async with self._client.session().post(
                    self._client.url("audio/speech"), data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"}) as response:
                if response.status >= 400:
                    raise await status_error(self.name, response)
                if response.content_type in WAV_TYPES:
                    yield self._parsed_wav(await response.read())
                    return
                async for chunk in _pcm_chunks(response.content, OPENAI_PCM_RATE):
                    yield chunk
        except TRANSPORT_ERRORS as exc:
            raise map_error(self.name, exc) from exc

    def _parsed_wav(self, raw: bytes) -> AudioChunk:
        try:
            return read_wav(raw)
        except (wave.Error, EOFError, ValueError):
            raise unexpected_reply(self.name, raw) from None

    async def aclose(self) -> None:
        await self._client.aclose()


async def _pcm_chunks(content: aiohttp.StreamReader, rate: int) -> AsyncIterator[AudioChunk]:
    """Raw PCM16 as it arrives, in whole samples (an odd byte waits for the next read)."""
    carry = b""
    while True:
        data = await content.read(READ_BYTES)
        if not data:
            return
        data = carry + data
        whole = len(data) - len(data) % SAMPLE_WIDTH
        carry = data[whole:]
        if whole:
            yield AudioChunk(data[:whole], rate)


def read_wav(raw: bytes) -> AudioChunk:
    """A 16-bit WAV file as mono PCM (channels averaged)."""
    with wave.open(io.BytesIO(raw), "rb") as wav:
        if wav.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError("not 16-bit PCM")
        channels, rate = wav.getnchannels(), wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    if channels > 1:
        pcm = _downmix(pcm, channels)
    return AudioChunk(pcm, rate)


def _downmix(pcm: bytes, channels: int) -> bytes:
    samples = array("h", pcm[:len(pcm) - len(pcm) % (SAMPLE_WIDTH * channels)])
    mixed = array("h", (sum(samples[i:i + channels]) // channels
                        for i in range(0, len(samples), channels)))
    return mixed.tobytes()


def primary_subtag(language: str) -> str:
    """What the transcription endpoints take: ISO 639-1, ``"en-US"`` -> ``"en"``."""
    return language.split("-", 1)[0].split("_", 1)[0].lower()


def _language_tag(value: Any) -> str | None:
    """OpenAI's verbose answer names the language (``"english"``); others send a code."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if langcodes.tag_is_valid(text) and len(text) <= 3:
        return text.lower()
    try:
        return str(langcodes.find(text).language)
    except LookupError:
        return None


def _confidence(segments: Any) -> float | None:
    """The mean per-segment token probability, from Whisper's ``avg_logprob``."""
    if not isinstance(segments, list):
        return None
    logprobs = [s["avg_logprob"] for s in segments
                if isinstance(s, dict) and isinstance(s.get("avg_logprob"), int | float)]
    if not logprobs:
        return None
    return min(1.0, max(0.0, sum(math.exp(p) for p in logprobs) / len(logprobs)))


def _refuses_format(exc: ProviderError) -> bool:
    """A 400/422 answer that complains about the response format."""
    status = exc.details.get("status")
    message = exc.message.lower()
    return status in (400, 422) and any(word in message for word in REFUSED_FORMAT)
