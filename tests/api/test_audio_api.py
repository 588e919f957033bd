"""One-shot voice over HTTP: a recorded question in, the transcript, the reply and its
audio out; the reply's audio readable by its owner only, until it expires or its
session goes; every kind of bad upload refused with its own status.

The speech is real (espeak-ng), and so is the voice activity detector (Silero); the
recogniser and synthesiser are B's scripted fakes registered in the runtime, and the
model the scripted LLM (it echoes the user's words). One test runs the real offline
models end to end.
"""

from __future__ import annotations

import io
import os
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from personae.config import ProviderConfig, Settings
from personae.providers.fake import ScriptedRecogniser, ScriptedSynthesiser
from personae.providers.speech import AudioChunk, Voice
from personae.voice.audio import decode_audio
from personae.voice.encoding import encode_audio
from tests.support.api import Api, serve_app
from tests.support.personas import MOHIT, TINA
from tests.support.runtime import create_global_personas
from tests.support.speech import concat, espeak_audio, noise, silence, tone

QUESTION = "What is my lucky number?"
MAX_BYTES = 300_000
MAX_SECONDS = 5.0
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
PIPER_VOICE = Voice("en_US-joe-medium", "en-US", "male", "neural", "piper")
ESPEAK_VOICES = [Voice("en-us", "en-US", "female", "formant", "espeak"),
                 Voice("hi", "hi", "female", "formant", "espeak")]


def wav(chunk: AudioChunk) -> bytes:
    return encode_audio(chunk, "wav")


def question_wav(text: str = QUESTION) -> bytes:
    return wav(concat(silence(200), espeak_audio(text), silence(200)))


def audio_file(data: bytes, name: str = "question.wav",
               media_type: str = "audio/wav") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, media_type)}


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, anonymous_loopback=False,
                    providers={"llm": ProviderConfig(kind="scripted")},
                    default_provider="llm", voice_max_audio_bytes=MAX_BYTES,
                    voice_max_audio_seconds=MAX_SECONDS)


class Speech:
    def __init__(self, api: Api) -> None:
        self.stt = ScriptedRecogniser([QUESTION], languages=frozenset({"en"}))
        self.piper = ScriptedSynthesiser("piper", rate=22_050, voices=[PIPER_VOICE])
        self.espeak = ScriptedSynthesiser("espeak", rate=22_050, voices=ESPEAK_VOICES)
        api.runtime.speech.register_recogniser("whisper", self.stt)
        api.runtime.speech.register_synthesiser("piper", self.piper)
        api.runtime.speech.register_synthesiser("espeak", self.espeak)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async for harness in serve_app(settings_for(tmp_path, database_url)):
        await create_global_personas(harness.runtime, (TINA, MOHIT))
        yield harness


@pytest.fixture
def speech(api: Api) -> Speech:
    return Speech(api)


async def open_session(api: Api, user: str = "alice", persona: str = "mohit") -> str:
    response = await api.client.post("/v1/sessions", json={"persona_id": persona},
                                     headers=api.as_(user))
    assert response.status_code == 201, response.text
    session_id: str = response.json()["session"]["id"]
    return session_id


async def speak_to(api: Api, session_id: str, data: bytes, user: str = "alice",
                   **headers: str) -> dict[str, object]:
    response = await api.client.post(f"/v1/sessions/{session_id}/audio",
                                     files=audio_file(data),
                                     headers={**api.as_(user), **headers})
    return {"status": response.status_code, "body": response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else response.content, "headers": response.headers}


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_spoken_question_gets_its_transcript_reply_and_audio(
        api: Api, speech: Speech, tmp_path: Path) -> None:
    session_id = await open_session(api)
    response = await api.client.post(f"/v1/sessions/{session_id}/audio",
                                     files=audio_file(question_wav()), headers=api.as_("alice"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["transcript"]["text"] == QUESTION and body["transcript"]["audio_ms"] > 1000
    assert body["message"]["role"] == "user" and body["message"]["content"] == QUESTION
    assert body["message"]["meta"]["audio"]["recogniser"] == "whisper"
    assert body["reply"]["content"] == QUESTION  # the scripted model echoes
    assert body["reply"]["meta"]["voice"]["synthesiser"] == "piper"
    assert body["reply"]["meta"]["voice"]["voice_id"] == "en_US-joe-medium"
    assert set(body["timings"]) == {"decode_ms", "stt_ms", "reply_ms", "tts_ms", "total_ms"}
    assert body["reply"]["meta"]["timings"] == body["timings"]
    assert speech.stt.calls[0].language == "en"
    assert speech.stt.calls[0].audio.sample_rate == 16_000
    assert [call.text for call in speech.piper.calls] == ["What is my lucky number?"]
    clip = body["audio"]
    assert clip["url"] == f"/v1/audio/{clip['id']}" and clip["media_type"] == "audio/wav"
    assert clip["audio_ms"] == pytest.approx(speech.piper.audio_ms(QUESTION), abs=1)
    fetched = await api.client.get(clip["url"], headers=api.as_("alice"))
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "audio/wav"
    assert decode_audio(fetched.content, max_seconds=60).duration_ms > 500
    history = (await api.client.get(f"/v1/sessions/{session_id}/messages",
                                    headers=api.as_("alice"))).json()["data"]
    assert history[-2]["meta"]["audio"]["audio_ms"] > 1000
    assert history[-1]["meta"]["voice"]["clip_id"] == clip["id"]
    assert len(files_under(tmp_path / "audio")) == 1


async def test_accept_audio_wav_answers_with_the_wav_and_the_transcript_in_headers(
        api: Api, speech: Speech) -> None:
    api.runtime.speech.register_recogniser("whisper", ScriptedRecogniser(
        ["Namaste, kya haal hai? 100% sure"], languages=frozenset({"en"})))
    session_id = await open_session(api)
    response = await api.client.post(f"/v1/sessions/{session_id}/audio",
                                     files=audio_file(question_wav()),
                                     headers={**api.as_("alice"), "Accept": "audio/wav"})
    assert response.status_code == 201 and response.headers["content-type"] == "audio/wav"
    assert unquote(response.headers["x-transcript"]) == "Namaste, kya haal hai? 100% sure"
    with wave.open(io.BytesIO(response.content)) as reader:
        assert reader.getframerate() == 22_050 and reader.getnframes() > 0
    clip = await api.client.get(f"/v1/audio/{response.headers['x-audio-id']}",
                                headers=api.as_("alice"))
    assert clip.content == response.content
    history = (await api.client.get(f"/v1/sessions/{session_id}/messages",
                                    headers=api.as_("alice"))).json()["data"]
    assert history[-1]["id"] == int(response.headers["x-message-id"])


async def test_another_users_session_and_clip_are_not_found(api: Api, speech: Speech) -> None:
    session_id = await open_session(api)
    refused = await speak_to(api, session_id, question_wav(), user="bob")
    assert refused["status"] == 404 and speech.stt.calls == []
    done = await speak_to(api, session_id, question_wav())
    clip_id = done["body"]["audio"]["id"]  # type: ignore[index]
    other = await api.client.get(f"/v1/audio/{clip_id}", headers=api.as_("bob"))
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    anonymous = await api.client.get(f"/v1/audio/{clip_id}")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("clip_id", ["..%2Fx", "..%2F..%2Fpersonae.db", "0" * 31,
                                     "g" * 32, "0" * 32, "%2e%2e"])
async def test_clip_ids_that_are_not_a_clip_are_not_found(api: Api, clip_id: str) -> None:
    response = await api.client.get(f"/v1/audio/{clip_id}", headers=api.as_("alice"))
    assert response.status_code == 404


@pytest.mark.parametrize("data", [
    pytest.param(b"", id="empty"),
    pytest.param(b"this is a text file, not a recording\n" * 20, id="text-named-wav"),
    pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", id="truncated-wav"),
    pytest.param(PNG, id="png")])
async def test_what_is_not_audio_is_refused_415(api: Api, speech: Speech, data: bytes) -> None:
    session_id = await open_session(api)
    result = await speak_to(api, session_id, data)
    assert result["status"] == 415, result
    assert result["body"]["error"]["code"] == "unsupported_media_type"  # type: ignore[index]
    assert speech.stt.calls == []


async def test_an_upload_past_the_size_limit_is_refused_413(api: Api, speech: Speech) -> None:
    session_id = await open_session(api)
    just_over = wav(silence(1000))
    just_over += bytes(MAX_BYTES + 1 - len(just_over))  # within the form's allowance
    far_over = bytes(4 * MAX_BYTES)
    for data in (just_over, far_over):
        result = await speak_to(api, session_id, data)
        assert result["status"] == 413, result
        error = result["body"]["error"]  # type: ignore[index]
        assert error["code"] == "too_large"
        assert "PERSONAE_VOICE_MAX_AUDIO_BYTES" in error["message"]


async def test_a_missing_file_part_is_the_same_422_on_both_audio_routes(api: Api) -> None:
    session_id = await open_session(api)
    native = await api.client.post(f"/v1/sessions/{session_id}/audio",
                                   data={"note": "no file"}, headers=api.as_("alice"))
    openai = await api.client.post("/v1/audio/transcriptions", data={"model": "whisper-1"},
                                   headers=api.as_("alice"))
    for response in (native, openai):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error", error
        assert [issue["path"] for issue in error["details"]["errors"]] == ["file"]
    assert openai.json()["error"]["param"] == "file"  # OpenAI's shape on its route


async def test_the_413_names_the_file_limit_in_message_and_details(api: Api) -> None:
    session_id = await open_session(api)
    for size in (MAX_BYTES + 1, 4 * MAX_BYTES):  # within the form's allowance; past it
        result = await speak_to(api, session_id, bytes(size))
        error = result["body"]["error"]  # type: ignore[index]
        assert result["status"] == 413 and error["code"] == "too_large", result
        assert f"larger than {MAX_BYTES:,} bytes" in error["message"]
        assert error["details"]["limit"] == MAX_BYTES


async def test_audio_past_the_duration_limit_is_refused_422(api: Api, speech: Speech) -> None:
    session_id = await open_session(api)
    result = await speak_to(api, session_id, wav(concat(espeak_audio(QUESTION),
                                                        silence(MAX_SECONDS * 1000))))
    assert result["status"] == 422, result
    assert "5 s" in result["body"]["error"]["message"]  # type: ignore[index]
    assert speech.stt.calls == []


@pytest.mark.parametrize("chunk", [silence(2000), noise(2000, level=0.01), tone(1500, 440)],
                         ids=["silence", "quiet-noise", "tone"])
async def test_audio_without_speech_is_refused_422(api: Api, speech: Speech,
                                                   chunk: AudioChunk) -> None:
    session_id = await open_session(api)
    result = await speak_to(api, session_id, wav(chunk))
    assert result["status"] == 422, result
    assert "no speech found" in result["body"]["error"]["message"]  # type: ignore[index]
    assert speech.stt.calls == []


async def test_a_persona_nobody_here_can_hear_gets_a_422_naming_its_language(
        api: Api, speech: Speech) -> None:
    session_id = await open_session(api, persona="tina")
    result = await speak_to(api, session_id, question_wav())
    assert result["status"] == 422, result
    message = result["body"]["error"]["message"]  # type: ignore[index]
    assert "Hindi (hi)" in message and "PERSONAE_STT_PROVIDER" in message


async def test_deleting_the_session_removes_its_audio(api: Api, speech: Speech,
                                                      tmp_path: Path) -> None:
    session_id = await open_session(api)
    kept_session = await open_session(api)
    gone = (await speak_to(api, session_id, question_wav()))["body"]["audio"]["id"]  # type: ignore[index]
    kept = (await speak_to(api, kept_session, question_wav()))["body"]["audio"]["id"]  # type: ignore[index]
    deleted = await api.client.delete(f"/v1/sessions/{session_id}", headers=api.as_("alice"))
    assert deleted.status_code == 204
    assert (await api.client.get(f"/v1/audio/{gone}", headers=api.as_("alice"))).status_code == 404
    assert (await api.client.get(f"/v1/audio/{kept}", headers=api.as_("alice"))).status_code == 200
    assert [p.stem for p in files_under(tmp_path / "audio")] == [kept]


async def test_an_expired_clip_is_gone_and_swept(api: Api, speech: Speech,
                                                 tmp_path: Path) -> None:
    session_id = await open_session(api)
    clip_id = (await speak_to(api, session_id, question_wav()))["body"]["audio"]["id"]  # type: ignore[index]
    clips = api.runtime.voice.clips
    clips.clock = lambda: time.time() + clips.ttl_seconds + 1
    assert (await api.client.get(f"/v1/audio/{clip_id}",
                                 headers=api.as_("alice"))).status_code == 404
    assert await api.runtime.voice.sweep() == 1
    assert files_under(tmp_path / "audio") == []


async def test_the_real_offline_models_hear_the_question_and_speak_the_reply(
        api: Api) -> None:
    """Whisper tiny.en hears espeak-ng's question; Piper speaks the (echoed) reply,
    and Whisper hears the reply's audio say it again."""
    session_id = await open_session(api)
    result = await speak_to(api, session_id, question_wav("Please tell me about the moon."))
    assert result["status"] == 201, result
    body = result["body"]
    heard = body["transcript"]["text"].lower()  # type: ignore[index]
    assert "moon" in heard and "tell" in heard
    assert body["reply"]["meta"]["voice"]["synthesiser"] == "piper"  # type: ignore[index]
    fetched = await api.client.get(body["audio"]["url"], headers=api.as_("alice"))  # type: ignore[index]
    spoken = decode_audio(fetched.content, max_seconds=60)
    assert spoken.duration_ms > 1000
    again = await api.runtime.speech.recogniser("whisper").transcribe(spoken, language="en")
    assert "moon" in again.text.lower()


async def test_start_up_sweeps_what_an_earlier_process_left(database_url: str,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "audio" / "someone" / "a-session"
    folder.mkdir(parents=True)
    stale = folder / f"{'a' * 32}.wav"
    crashed = folder / f".{'b' * 32}.wav.1234.part"
    for path in (stale, crashed):
        path.write_bytes(b"left over")
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    fresh = tmp_path / "audio" / "someone" / "other" / f"{'c' * 32}.wav"
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"still wanted")
    settings = settings_for(tmp_path, database_url).model_copy(
        update={"voice_audio_ttl_seconds": 3600.0})
    async for _ in serve_app(settings):
        assert files_under(tmp_path / "audio") == [fresh]
        assert not folder.exists()
