"""OpenAI's audio calls: the official ``openai`` SDK, unchanged, against a real server
process running the offline models; and every refusal, in OpenAI's error shape.

The SDK tests speak to ``personae`` served by uvicorn (Whisper tiny.en hears,
the Piper voice speaks); the error tests drive the app in process with scripted
speech providers.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import openai
import pytest
import soundfile
import uvicorn

from personae.api.app import create_app
from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError
from personae.providers.fake import ScriptedRecogniser, ScriptedSynthesiser
from personae.providers.speech import AudioChunk, Voice, VoiceChoice
from personae.providers.streams import aclose_stream
from personae.voice.audio import decode_audio, sniff_format
from personae.voice.encoding import encode_audio
from personae.voice.speaking import sentences
from tests.conftest import sqlite_url_for
from tests.support.api import Api, serve_app
from tests.support.personas import MOHIT, TINA
from tests.support.runtime import create_global_personas
from tests.support.servers import api_server
from tests.support.speech import concat, espeak_audio, silence

QUESTION = "Please tell me about the moon."
MAX_BYTES = 300_000
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def question_wav(text: str = QUESTION) -> bytes:
    return encode_audio(concat(silence(200), espeak_audio(text), silence(200)), "wav")


# -- the SDK against a real server ---------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``personae`` in its own process (keyless on loopback: the local admin), with
    Mohit, an English persona, stored globally."""
    data = tmp_path_factory.mktemp("openai-audio")
    with api_server(sqlite_url_for(data), data, PERSONAE_PROVIDERS="{}") as url:
        created = httpx.post(f"{url}/v1/personas", json={"definition": MOHIT, "global": True},
                             timeout=30)
        assert created.status_code == 201, created.text
        yield url


@pytest.fixture
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="x", max_retries=0, timeout=120)


def test_the_sdk_transcribes_a_file(client: openai.OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "question.wav"
    path.write_bytes(question_wav())
    with path.open("rb") as file:
        heard = client.audio.transcriptions.create(model="whisper-1", file=file)
    assert "moon" in heard.text.lower() and "tell" in heard.text.lower()
    with path.open("rb") as file:  # a persona as the model: its language, its recogniser
        verbose = client.audio.transcriptions.create(model="mohit", file=file,
                                                     response_format="verbose_json")
    assert "moon" in verbose.text.lower() and verbose.language == "en"
    assert 1.5 < verbose.duration < 5
    with path.open("rb") as file:
        text = client.audio.transcriptions.create(model="whisper-1", file=file,
                                                  response_format="text")
    assert "moon" in str(text).lower()


def test_the_sdk_speaks_text_in_every_format(client: openai.OpenAI) -> None:
    spoken = client.audio.speech.create(model="tts-1", voice="alloy",
                                        input="Hello there, how are you today?")
    assert spoken.response.headers["content-type"] == "audio/mpeg"
    assert sniff_format(spoken.content) == "mp3"
    assert decode_audio(spoken.content, max_seconds=60).duration_ms > 800
    for response_format, container in (("wav", "wav"), ("flac", "flac"), ("opus", "ogg")):
        audio = client.audio.speech.create(model="tts-1", voice="nova", input="Good morning.",
                                           response_format=response_format)
        assert sniff_format(audio.content) == container, response_format
    pcm = client.audio.speech.create(model="tts-1", voice="alloy", input="Good morning.",
                                     response_format="pcm")
    assert pcm.response.headers["content-type"] == "audio/pcm"
    assert 0.4 < len(pcm.content) / (2 * 24_000) < 3  # OpenAI's raw rate: 24 kHz


def test_the_sdk_speaks_in_a_personas_voice_and_a_named_local_voice(
        client: openai.OpenAI, tmp_path: Path) -> None:
    by_persona = client.audio.speech.create(model="tts-1", voice="mohit", input="Namaste.",
                                            response_format="wav")
    by_model = client.audio.speech.create(model="mohit", voice="alloy", input="Namaste.",
                                          response_format="wav")
    joe = client.audio.speech.create(model="tts-1", voice="en_US-joe-medium",
                                     input="Namaste.", response_format="wav")
    spoken_by = {each.response.headers["x-voice"] for each in (by_persona, by_model, joe)}
    assert spoken_by == {"piper/en_US-joe-medium"}  # Mohit (male, English) speaks as joe
    espeak = client.audio.speech.create(model="tts-1", voice="en-us", input="Namaste.",
                                        response_format="wav")
    assert espeak.response.headers["x-voice"] == "espeak/en-us"
    heard = client.audio.transcriptions.create(
        model="whisper-1", file=("reply.wav", by_persona.content, "audio/wav"))
    assert heard.text.strip()


def test_the_sdk_reports_refusals_as_its_own_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.speech.create(model="tts-1", voice="alloy", input="x" * 4097)
    assert bad.value.body["param"] == "input"  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError, match="no speech found"):
        client.audio.transcriptions.create(
            model="whisper-1", file=("silence.wav", encode_audio(silence(1500), "wav")))


# -- refusals, in process ----------------------------------------------------------------


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, database_url=database_url,
                        anonymous_loopback=False, voice_max_audio_bytes=MAX_BYTES,
                        providers={"llm": ProviderConfig(kind="scripted")},
                        default_provider="llm")
    async for harness in serve_app(settings):
        await create_global_personas(harness.runtime, (TINA, MOHIT))
        speech = harness.runtime.speech
        speech.register_recogniser("whisper", ScriptedRecogniser(
            [QUESTION], languages=frozenset({"en"})))
        speech.register_synthesiser("piper", ScriptedSynthesiser("piper", voices=[
            Voice("en_US-joe-medium", "en-US", "male", "neural", "piper")]))
        speech.register_synthesiser("espeak", ScriptedSynthesiser("espeak", voices=[
            Voice("hi", "hi", "female", "formant", "espeak")]))
        yield harness


def openai_shaped(response: httpx.Response, status: int, code: str,
                  param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["code"] == code and error["param"] == param
    return error


async def transcribe(api: Api, data: bytes | None, **fields: str) -> httpx.Response:
    files = {"file": ("q.wav", data, "audio/wav")} if data is not None else None
    return await api.client.post("/v1/audio/transcriptions", headers=api.as_("alice"),
                                 data={"model": "whisper-1", **fields}, files=files)


async def test_transcription_refusals_are_in_openai_shape(api: Api) -> None:
    speech = question_wav()
    assert (await transcribe(api, speech)).json() == {"text": QUESTION}
    openai_shaped(await transcribe(api, speech, response_format="srt"), 400,
                  "unsupported_parameter", "response_format")
    openai_shaped(await transcribe(api, None), 422, "validation_error", "file")
    openai_shaped(await transcribe(api, PNG), 415, "unsupported_media_type")
    openai_shaped(await transcribe(api, b""), 415, "unsupported_media_type")
    error = openai_shaped(await transcribe(api, encode_audio(silence(1000), "wav")), 422,
                          "validation_error")
    assert "no speech found" in error["message"]
    for size in (MAX_BYTES + 1, 4 * MAX_BYTES):  # within the form's allowance; past it
        error = openai_shaped(await transcribe(api, bytes(size)), 413, "too_large")
        assert f"larger than {MAX_BYTES:,} bytes" in error["message"]
        assert error["details"]["limit"] == MAX_BYTES  # the file's limit, as the message says
    error = openai_shaped(await transcribe(api, speech, model="tina"), 422, "validation_error")
    assert "Hindi (hi)" in error["message"]
    anonymous = await api.client.post("/v1/audio/transcriptions", data={"model": "whisper-1"},
                                      files={"file": ("q.wav", speech, "audio/wav")})
    openai_shaped(anonymous, 401, "unauthenticated")


async def test_a_persona_nobody_here_hears_gets_only_the_recognition_problem(
        api: Api) -> None:
    """Tina's voice provider is not configured here, so another voice speaks; that is
    no part of a transcription's refusal, nor is the socket's "typed messages"."""
    await create_global_personas(api.runtime, (
        {**TINA, "id": "tina-cloud", "voice": {"provider": "openai", "voice_id": "nova"}},))
    error = openai_shaped(await transcribe(api, question_wav(), model="tina-cloud"), 422,
                          "validation_error")
    message = error["message"]
    assert message.startswith("no speech recogniser for Hindi (hi) is installed"), message
    assert "PERSONAE_STT_PROVIDER" in message
    assert "typed messages" not in message and "voice provider 'openai'" not in message


async def test_a_language_the_recogniser_does_not_hear_is_refused(api: Api) -> None:
    """The English-only model asked for Hindi would answer in English: refused as the
    persona case is, naming the language and how to configure a cloud recogniser."""
    recogniser = api.runtime.speech.instance("stt", "whisper")
    for language in ("hi", "hi-IN"):
        error = openai_shaped(await transcribe(api, question_wav(), language=language), 422,
                              "validation_error")
        assert "no speech recogniser for Hindi" in error["message"]
        assert "PERSONAE_STT_PROVIDER" in error["message"]
    assert recogniser.calls == []
    heard = await transcribe(api, question_wav(), language="en-GB")
    assert heard.json() == {"text": QUESTION}


async def test_raw_aac_such_as_our_own_speech_output_is_transcribed(api: Api) -> None:
    spoken = encode_audio(concat(silence(200), espeak_audio(QUESTION), silence(200)), "aac")
    assert sniff_format(spoken) == "aac"
    assert (await transcribe(api, spoken)).json() == {"text": QUESTION}


async def speak(api: Api, body: Any) -> httpx.Response:
    return await api.client.post("/v1/audio/speech", headers=api.as_("alice"), json=body)


async def test_speech_refusals_are_in_openai_shape(api: Api) -> None:
    ok = await speak(api, {"model": "tts-1", "voice": "alloy", "input": "Hello.",
                           "response_format": "wav"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "audio/wav"
    base = {"model": "tts-1", "voice": "alloy", "input": "Hello."}
    openai_shaped(await speak(api, {**base, "input": "x" * 4097}), 400, "invalid_input",
                  "input")
    openai_shaped(await speak(api, {**base, "input": ""}), 400, "invalid_input", "input")
    openai_shaped(await speak(api, {**base, "speed": 4.5}), 400, "invalid_input", "speed")
    openai_shaped(await speak(api, {**base, "response_format": "ogg"}), 400,
                  "invalid_input", "response_format")
    openai_shaped(await speak(api, {"voice": "alloy", "input": "Hi"}), 400, "invalid_input",
                  "model")
    not_json = await api.client.post("/v1/audio/speech", headers=api.as_("alice"),
                                     content=b"{not json")
    openai_shaped(not_json, 400, "invalid_input")
    deep = b'{"model": "tts-1", "voice": "alloy", "input": "Hi", "x": ' + b"[" * 500 \
        + b"]" * 500 + b"}"
    too_deep = await api.client.post("/v1/audio/speech", headers=api.as_("alice"),
                                     content=deep)
    assert "nested deeper" in openai_shaped(too_deep, 400, "invalid_input")["message"]


async def test_speech_uses_a_personas_voice_the_caller_can_use(api: Api) -> None:
    piper = api.runtime.speech.instance("tts", "piper")
    espeak = api.runtime.speech.instance("tts", "espeak")
    assert (await speak(api, {"model": "tts-1", "voice": "tina", "input": "नमस्ते।",
                              "response_format": "wav"})).status_code == 200
    assert espeak.calls[-1].voice.voice_id == "hi"
    assert (await speak(api, {"model": "mohit", "voice": "nova", "input": "Hi.",
                              "response_format": "wav"})).status_code == 200
    assert piper.calls[-1].voice.voice_id == "en_US-joe-medium"
    assert (await speak(api, {"model": "tts-1", "voice": "hi", "input": "Hi.",
                              "response_format": "wav", "speed": 2})).status_code == 200
    assert espeak.calls[-1].voice.voice_id == "hi" and espeak.calls[-1].voice.speed == 2


async def test_a_voice_nobody_here_has_is_refused_not_spoken_in_another(api: Api) -> None:
    calls = len(api.runtime.speech.instance("tts", "piper").calls)
    refused = await speak(api, {"model": "tts-1", "voice": "mohti", "input": "Hi."})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "voice"
    assert "'mohti'" in refused.json()["error"]["message"]
    assert len(api.runtime.speech.instance("tts", "piper").calls) == calls  # nothing spoken


# -- streamed speech, over real HTTP, in process -------------------------------------------

LONG = " ".join(f"Sentence number {n} is spoken here." for n in range(30))
JOE = Voice("en_US-joe-medium", "en-US", "male", "neural", "piper")


class GatedSynthesiser(ScriptedSynthesiser):
    """Speaks its first ``free`` pieces at once and each later one only once ``gate``
    opens, so a test knows how far the synthesis had got when a byte arrived;
    ``stopped`` is set when a stream is closed before its end."""

    def __init__(self, free: int) -> None:
        super().__init__("piper", rate=22_050, ms_per_char=10, voices=[JOE])
        self.free = free
        self.gate = asyncio.Event()
        self.stopped = asyncio.Event()

    def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        stream = super().synthesize(text, voice=voice)
        return self._gated(len(self.calls) - 1, stream)

    async def _gated(self, index: int,
                     stream: AsyncIterator[AudioChunk]) -> AsyncIterator[AudioChunk]:
        finished = False
        try:
            if index >= self.free:
                await self.gate.wait()
            async for chunk in stream:
                yield chunk
            finished = True
        finally:
            await aclose_stream(stream)
            if not finished:
                self.stopped.set()


@dataclass
class Streamed:
    url: str
    synthesiser: GatedSynthesiser


@pytest.fixture
async def streamed(database_url: str, tmp_path: Path) -> AsyncIterator[Streamed]:
    """The app served by uvicorn in this event loop (keyless on loopback: the local
    admin), speaking with a gated synthesiser that says one piece before waiting."""
    settings = Settings(data_dir=tmp_path, database_url=database_url,
                        providers={"llm": ProviderConfig(kind="scripted")},
                        default_provider="llm")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        synthesiser = GatedSynthesiser(free=1)
        app.state.runtime.speech.register_synthesiser("piper", synthesiser)
        listening = socket.create_server(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        try:
            port = listening.getsockname()[1]
            yield Streamed(f"http://127.0.0.1:{port}", synthesiser)
        finally:
            server.should_exit = True
            await serving


def speech_body(fmt: str, text: str = LONG) -> dict[str, Any]:
    return {"model": "tts-1", "voice": "alloy", "input": text, "response_format": fmt}


async def test_speech_streams_while_the_rest_is_still_being_spoken(
        streamed: Streamed) -> None:
    synthesiser, pieces = streamed.synthesiser, sentences(LONG)
    assert len(pieces) > 10
    async with httpx.AsyncClient(base_url=streamed.url, timeout=30) as client:
        async with asyncio.timeout(10):  # before streaming: no byte until all is spoken
            response = await client.send(client.build_request(
                "POST", "/v1/audio/speech", json=speech_body("wav")), stream=True)
            received = response.aiter_raw()
            first = await anext(received)
        try:
            assert response.headers["content-type"] == "audio/wav"
            assert response.headers["transfer-encoding"] == "chunked"
            assert response.headers["x-voice"] == "piper/en_US-joe-medium"
            assert first[:4] == b"RIFF" and len(first) > 44  # the first piece's samples
            assert len(synthesiser.calls) <= synthesiser.free + 1  # the rest: not yet
            synthesiser.gate.set()
            audio = first + b"".join([chunk async for chunk in received])
        finally:
            await response.aclose()
    assert [call.text for call in synthesiser.calls] == pieces
    spoken_ms = sum(synthesiser.audio_ms(piece) for piece in pieces)
    assert abs(decode_audio(audio, max_seconds=600).duration_ms - spoken_ms) < 50
    samples, rate = soundfile.read(io.BytesIO(audio), dtype="int16")
    assert rate == 22_050 and abs(len(samples) / rate * 1000 - spoken_ms) < 50


async def test_a_client_that_leaves_mid_stream_stops_the_synthesis(
        streamed: Streamed) -> None:
    synthesiser = streamed.synthesiser
    async with httpx.AsyncClient(base_url=streamed.url, timeout=30) as client:
        async with asyncio.timeout(10):
            async with client.stream("POST", "/v1/audio/speech",
                                     json=speech_body("mp3")) as response:
                assert response.status_code == 200
                assert sniff_format(await anext(response.aiter_raw())) == "mp3"
        # The connection is closed with the rest unread: the server stops speaking.
        await asyncio.wait_for(synthesiser.stopped.wait(), 10)
    assert len(synthesiser.calls) == synthesiser.free + 1  # the one waiting was cancelled
    assert not synthesiser.gate.is_set()


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
async def test_every_streamed_format_is_one_whole_file(streamed: Streamed, fmt: str) -> None:
    streamed.synthesiser.gate.set()
    text = "One sentence first. Then another one. And a last one, to end with."
    async with httpx.AsyncClient(base_url=streamed.url, timeout=30) as client:
        response = await client.post("/v1/audio/speech", json=speech_body(fmt, text))
    assert response.status_code == 200, response.text
    spoken_ms = sum(streamed.synthesiser.audio_ms(piece) for piece in sentences(text))
    if fmt == "pcm":
        assert abs(len(response.content) / (2 * 24_000) * 1000 - spoken_ms) < 10
        return
    with av.open(io.BytesIO(response.content)) as container:
        seconds = sum(f.samples / f.sample_rate for f in container.decode(audio=0))
    assert abs(seconds * 1000 - spoken_ms) < 80, fmt  # codec priming and padding


async def test_speech_failures_before_the_first_byte_keep_their_status(api: Api) -> None:
    piper = api.runtime.speech.instance("tts", "piper")
    piper.failures.extend([ProviderError("piper", "the voice crashed")] * 3)
    failed = await speak(api, {"model": "tts-1", "voice": "alloy", "input": LONG})
    assert "the voice crashed" in openai_shaped(failed, 502, "provider_error")["message"]
    only_controls = await speak(api, {"model": "tts-1", "voice": "alloy",
                                      "input": "\x00\x1b\u200b\r"})
    openai_shaped(only_controls, 400, "invalid_input", "input")


@pytest.mark.parametrize("text", ["...!!!???", "🙂🙂🙂", "  \n ", "** -- **"])
async def test_text_with_nothing_to_say_is_refused(api: Api, text: str) -> None:
    """No piece with a letter or digit (the splitter's rule): refused, not an empty file."""
    for fmt in ("wav", "flac", "mp3"):
        refused = await speak(api, {"model": "tts-1", "voice": "alloy", "input": text,
                                    "response_format": fmt})
        error = openai_shaped(refused, 400, "invalid_input", "input")
        assert "has nothing to say: no letters or digits" in error["message"]
    assert api.runtime.speech.instance("tts", "piper").calls == []


class FailsFrom(ScriptedSynthesiser):
    """Speaks its first ``good`` pieces, then fails on every one."""

    def __init__(self, good: int) -> None:
        super().__init__("piper", voices=[JOE])
        self.good = good

    def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        if len(self.calls) >= self.good:
            self.failures.append(ProviderError("piper", "the voice crashed"))
        return super().synthesize(text, voice=voice)


async def test_a_failure_after_the_first_bytes_ends_the_file_there(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    piper = FailsFrom(good=1)
    api.runtime.speech.register_synthesiser("piper", piper)
    text = "A first sentence that is long enough. A second one that fails. A third."
    response = await speak(api, {"model": "tts-1", "voice": "alloy", "input": text,
                                 "response_format": "wav"})
    assert response.status_code == 200  # the first sentence had been sent already
    first_ms = piper.audio_ms(sentences(text)[0])
    assert abs(decode_audio(response.content, max_seconds=60).duration_ms - first_ms) < 20
    assert len(piper.calls) == 2  # nothing more was asked for after the failure
    assert "speech stream stopped after its first bytes" in caplog.text


async def test_control_and_format_characters_are_not_spoken(api: Api) -> None:
    piper = api.runtime.speech.instance("tts", "piper")
    response = await speak(api, {"model": "tts-1", "voice": "alloy", "response_format": "wav",
                                 "input": "Hello\x00\x07 wor\u200bld,\r\nhow\u202e are\tyou?"})
    assert response.status_code == 200
    assert " ".join(call.text for call in piper.calls) == "Hello world, how are you?"
