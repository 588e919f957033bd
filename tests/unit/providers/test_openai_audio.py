"""Cloud speech over OpenAI's audio protocol, against a loopback server speaking it."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator

import pytest

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from personae.providers.fake import FakeAudioServer
from personae.providers.fake.scripted_speech import tone
from personae.providers.openai_audio import (
    OPENAI_PCM_RATE,
    OpenAIRecogniser,
    OpenAISynthesiser,
    build_recogniser,
    build_synthesiser,
)
from personae.providers.speech import AudioChunk, VoiceChoice
from personae.providers.speech_registry import SpeechProviders

SPEECH = AudioChunk(tone(0, 8000, 16_000), 16_000)  # half a second
BOUND = 5.0


@pytest.fixture(scope="module")
def server() -> AsyncIterator[FakeAudioServer]:
    with FakeAudioServer() as running:
        yield running  # type: ignore[misc]


@pytest.fixture(autouse=True)
def fresh(server: FakeAudioServer) -> None:
    server.requests.clear()
    server.fail_next(0)
    server.hang(False)
    server.behaviour.transcripts = ["hello there"]
    server.behaviour.refuse_verbose_json = False
    server.speech.pcm, server.speech.answer_wav, server.speech.chunk_delay = None, False, 0.0
    server.speech.rate = OPENAI_PCM_RATE


def config(server: FakeAudioServer, **extra: object) -> ProviderConfig:
    return ProviderConfig(kind="openai", base_url=server.base_url, api_key="sk-test",
                          **extra)  # type: ignore[arg-type]


async def test_a_transcription_sends_a_wav_with_the_model_language_and_key(
        server: FakeAudioServer) -> None:
    recogniser = build_recogniser("cloud", config(server, transcription_model="whisper-x"),
                                  Settings())
    heard = await recogniser.transcribe(SPEECH, language="en-GB", prompt="Before that")
    await recogniser.aclose()
    request = server.calls("transcriptions")[0]
    assert request.authorization == "Bearer sk-test"
    assert request.fields == {"model": "whisper-x", "language": "en", "prompt": "Before that",
                              "response_format": "verbose_json"}
    assert request.file_type == "audio/wav"
    with wave.open(io.BytesIO(request.file)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        assert wav.readframes(wav.getnframes()) == SPEECH.pcm
    assert heard.text == "hello there" and heard.language == "en"
    assert heard.provider == "cloud" and heard.model == "whisper-x"
    assert heard.confidence == pytest.approx(0.905, abs=0.001)  # exp(-0.1)
    assert heard.audio_ms == pytest.approx(500)


async def test_a_language_name_in_the_answer_becomes_its_code(
        server: FakeAudioServer) -> None:
    recogniser = OpenAIRecogniser("cloud", config(server))
    heard = await recogniser.transcribe(SPEECH)  # no hint: the server names "english"
    await recogniser.aclose()
    assert heard.language == "en" and "language" not in server.calls("transcriptions")[0].fields


async def test_a_server_refusing_verbose_json_is_asked_for_plain_json(
        server: FakeAudioServer) -> None:
    server.behaviour.refuse_verbose_json = True
    recogniser = OpenAIRecogniser("cloud", config(server))
    first = await recogniser.transcribe(SPEECH, language="hi")
    second = await recogniser.transcribe(SPEECH, language="hi")
    await recogniser.aclose()
    formats = [r.fields["response_format"] for r in server.calls("transcriptions")]
    assert formats == ["verbose_json", "json", "json"]  # remembered after the refusal
    assert first.text == second.text == "hello there"
    assert first.language == "hi" and first.confidence is None


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (429, True), (503, True)])
async def test_error_statuses_are_classified_like_chat(server: FakeAudioServer, status: int,
                                                        retryable: bool) -> None:
    server.fail_next(1, status=status, message="explained by the server")
    recogniser = OpenAIRecogniser("cloud", config(server))
    with pytest.raises(ProviderError, match=f"cloud: {status} explained by the server") as err:
        await recogniser.transcribe(SPEECH)
    await recogniser.aclose()
    assert err.value.retryable is retryable and err.value.details["status"] == status


async def test_a_server_that_hangs_times_out(server: FakeAudioServer) -> None:
    server.hang()
    recogniser = OpenAIRecogniser("cloud", config(server, timeout_seconds=0.2))
    synthesiser = OpenAISynthesiser("cloud", config(server, timeout_seconds=0.2))
    async with asyncio.timeout(BOUND):
        with pytest.raises(ProviderTimeout):
            await recogniser.transcribe(SPEECH)
        with pytest.raises(ProviderTimeout):
            await anext(aiter(synthesiser.synthesize("Hi.", voice=VoiceChoice())))
    server.hang(False)
    await recogniser.aclose()
    await synthesiser.aclose()


async def test_a_refused_connection_is_unavailable_and_retryable() -> None:
    recogniser = OpenAIRecogniser("cloud", ProviderConfig(kind="openai",
                                                          base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(ProviderUnavailable) as err:
        await recogniser.transcribe(SPEECH)
    await recogniser.aclose()
    assert err.value.retryable


async def test_speech_is_requested_as_pcm_and_streamed_in_whole_samples(
        server: FakeAudioServer) -> None:
    server.speech.pcm = tone(0, 24_000, OPENAI_PCM_RATE)  # one second
    server.speech.chunk_bytes = 4801  # every chunk splits a sample
    synthesiser = build_synthesiser("cloud", config(server, speech_model="tts-x"), Settings())
    chunks = [c async for c in synthesiser.synthesize(
        "Namaste.", voice=VoiceChoice("nova", 1.25, "hi"))]
    await synthesiser.aclose()
    assert server.calls("speech")[0].fields == {
        "model": "tts-x", "input": "Namaste.", "voice": "nova", "speed": 1.25,
        "response_format": "pcm"}
    assert server.calls("speech")[0].authorization == "Bearer sk-test"
    assert len(chunks) > 1 and {c.sample_rate for c in chunks} == {OPENAI_PCM_RATE}
    assert b"".join(c.pcm for c in chunks) == server.speech.pcm


async def test_the_default_voice_is_alloy(server: FakeAudioServer) -> None:
    synthesiser = OpenAISynthesiser("cloud", config(server))
    assert [c async for c in synthesiser.synthesize("Hi.", voice=VoiceChoice())]
    await synthesiser.aclose()
    assert server.calls("speech")[0].fields["voice"] == "alloy"


async def test_a_wav_answer_is_parsed(server: FakeAudioServer) -> None:
    server.speech.answer_wav, server.speech.rate = True, 22_050
    server.speech.pcm = tone(0, 2205, 22_050)
    synthesiser = OpenAISynthesiser("cloud", config(server))
    chunks = [c async for c in synthesiser.synthesize("Hi.", voice=VoiceChoice())]
    await synthesiser.aclose()
    assert [c.sample_rate for c in chunks] == [22_050]
    assert chunks[0].pcm == server.speech.pcm


async def test_a_synthesis_error_is_classified(server: FakeAudioServer) -> None:
    server.fail_next(1, status=401, message="invalid key", endpoint="speech")
    synthesiser = OpenAISynthesiser("cloud", config(server))
    with pytest.raises(ProviderError, match="401 invalid key") as err:
        await anext(aiter(synthesiser.synthesize("Hi.", voice=VoiceChoice())))
    await synthesiser.aclose()
    assert not err.value.retryable


async def test_through_the_registry_a_503_is_retried(server: FakeAudioServer) -> None:
    speech = SpeechProviders(Settings(providers={"cloud": config(server)}))
    server.fail_next(1, status=503)
    heard = await speech.recogniser("cloud").transcribe(SPEECH)
    server.fail_next(1, status=503, endpoint="speech")
    chunks = [c async for c in speech.synthesiser("cloud").synthesize(
        "Hello.", voice=VoiceChoice("nova"))]
    await speech.aclose()
    assert heard.text == "hello there" and len(server.calls("transcriptions")) == 2
    assert chunks and len(server.calls("speech")) == 2
