"""The voice socket against a real server process with the real local speech models
(Silero, Whisper tiny.en, Piper, espeak-ng) and a loopback model server that echoes.

A question synthesised by espeak-ng is streamed at real-time pace in 20 ms frames, as
a microphone would send it; the reply's audio is transcribed back. Two users talk at
once, an English and a Hindi persona (no Hindi recogniser: a typed turn, spoken).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from personae.config import Settings
from personae.providers.fake import FakeOpenAIServer
from personae.providers.speech import AudioChunk
from personae.providers.whisper_stt import WhisperRecogniser
from tests.support.personas import MOHIT, TINA
from tests.support.runtime import member_keys
from tests.support.servers import api_server
from tests.support.speech import espeak_audio, resample

pytestmark = pytest.mark.slow
FRAME_BYTES = 640  # 20 ms at 16 kHz
QUESTION = "What is the weather like on Mars today?"
WAIT = 60.0  # a bound for any one step on a busy 2-core machine


@dataclass
class Heard:
    """What one socket received: events, and the binary audio after each audio_start."""

    events: list[dict[str, Any]] = field(default_factory=list)
    audio: dict[int, bytearray] = field(default_factory=dict)  # by event position
    first_audio_at: dict[int, float] = field(default_factory=dict)

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]

    def audio_after(self, position: int) -> bytes:
        return b"".join(bytes(a) for p, a in self.audio.items() if p > position)


async def until(ws: ClientConnection, heard: Heard, kind: str, since: int = 0,
                **match: Any) -> dict[str, Any]:
    """The first event of ``kind`` (with the given fields) at or after position
    ``since``, reading more from the socket until it arrives."""
    def found() -> dict[str, Any] | None:
        return next((e for e in heard.events[since:] if e["type"] == kind and
                     all(e.get(k) == v for k, v in match.items())), None)

    async with asyncio.timeout(WAIT):
        while (event := found()) is None:
            message = await ws.recv()
            if isinstance(message, bytes):
                position = max(i for i, e in enumerate(heard.events)
                               if e["type"] == "audio_start")
                heard.audio.setdefault(position, bytearray()).extend(message)
                heard.first_audio_at.setdefault(position, time.monotonic())
            else:
                heard.events.append(json.loads(message))
        return event


async def stream_at_real_time(ws: ClientConnection, audio: AudioChunk) -> float:
    """Send ``audio`` in 20 ms frames on a real-time schedule; when the last was sent."""
    started = time.monotonic()
    for number, start in enumerate(range(0, len(audio.pcm), FRAME_BYTES)):
        await ws.send(audio.pcm[start:start + FRAME_BYTES])
        delay = started + (number + 1) * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the simulated microphone, not a wait
    return time.monotonic()


def trailing_silence_ms(audio: AudioChunk, level: int = 300) -> float:
    """How much quiet ends the clip (espeak-ng pads its speech)."""
    samples = memoryview(audio.pcm).cast("h")
    last = max((i for i in range(len(samples)) if abs(samples[i]) > level), default=0)
    return (len(samples) - last) * 1000 / audio.sample_rate


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> WhisperRecogniser:
    """The test's own recogniser, to hear the reply audio back."""
    return WhisperRecogniser("whisper", "tiny.en", tmp_path_factory.mktemp("models"), 1)


async def open_session(url: str, key: str, persona: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        opened = await client.post("/v1/sessions", json={"persona_id": persona},
                                   headers={"Authorization": f"Bearer {key}"})
        return str(opened.json()["session"]["id"])


async def english_voice_turn(ws_url: str, key: str, whisper: WhisperRecogniser,
                             latencies: list[float]) -> Heard:
    heard = Heard()
    async with connect(f"{ws_url}?api_key={key}", max_size=None) as ws:
        ready = await until(ws, heard, "ready")
        assert ready["voice"]["synthesiser"] == "piper"
        assert ready["voice"]["recogniser"] == "whisper"
        await until(ws, heard, "audio_end", index=0)  # the greeting, spoken
        assert heard.audio_after(0)
        question = espeak_audio(QUESTION)
        last_sample_at = await stream_at_real_time(ws, question)
        silence = AudioChunk(bytes(32_000), 16_000)  # the microphone stays open
        sender = asyncio.create_task(stream_at_real_time(ws, silence))
        transcript = await until(ws, heard, "transcript")
        after = heard.events.index(transcript)
        start = await until(ws, heard, "audio_start", after)
        await until(ws, heard, "done", after)
        await until(ws, heard, "timings", after)
        await sender
        position = heard.events.index(start)
        voiced_end = last_sample_at - trailing_silence_ms(question) / 1000
        latencies.append(heard.first_audio_at[position] - voiced_end)
        print("server timings:", heard.events[-1])
        reply_audio = heard.audio_after(position - 1)
        rate = start["sample_rate"]
    words = transcript["text"].lower()
    assert "weather" in words and "mars" in words
    assert len(reply_audio) / 2 / rate > 0.5
    back = await whisper.transcribe(resample(AudioChunk(reply_audio, rate), 16_000))
    assert "weather" in back.text.lower() or "mars" in back.text.lower()
    return heard


async def hindi_typed_turn(ws_url: str, key: str) -> Heard:
    heard = Heard()
    async with connect(f"{ws_url}?api_key={key}", max_size=None) as ws:
        ready = await until(ws, heard, "ready")
        assert ready["voice"]["recogniser"] is None
        assert any("Hindi" in w for w in ready["warnings"])
        greeting = await until(ws, heard, "audio_start")
        assert greeting["text"] == "नमस्ते, मैं तीना हूं।"
        await until(ws, heard, "audio_end")
        sent = len(heard.events)
        await ws.send(json.dumps({"type": "message", "content": "नमस्ते, आप कैसी हैं?"}))
        await until(ws, heard, "done", sent)
        start = await until(ws, heard, "audio_start", sent)
        await until(ws, heard, "audio_end", heard.events.index(start), index=start["index"])
        assert "नमस्ते" in start["text"]
        assert len(heard.audio_after(heard.events.index(start) - 1)) > 16_000
    return heard


async def bad_frames_then_a_turn(ws_url: str, key: str) -> None:
    heard = Heard()
    async with connect(f"{ws_url}?api_key={key}", max_size=None) as ws:
        await until(ws, heard, "ready")
        await ws.send(bytes(65 * 1024))
        assert (await until(ws, heard, "error"))["error"]["code"] == "too_large"
        for bad in ("not json", json.dumps({"type": "start", "format": "aiff"})):
            sent = len(heard.events)
            await ws.send(bad)
            assert (await until(ws, heard, "error", sent))["error"]["status"] == 400
        await ws.send(json.dumps({"type": "message", "content": "still there"}))
        assert "still there" in (await until(ws, heard, "done"))["message"]["content"]


async def disconnect_mid_reply(ws_url: str, url: str, key: str, model: FakeOpenAIServer,
                               sid: str) -> None:
    model.token_delay = 0.05
    heard = Heard()
    async with connect(f"{ws_url}?api_key={key}", max_size=None) as ws:
        await until(ws, heard, "ready")
        await ws.send(json.dumps({"type": "message",
                                  "content": " ".join(f"w{i}." for i in range(200))}))
        await until(ws, heard, "audio_start")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with asyncio.timeout(WAIT):
            while True:  # the server notices the disconnect and saves the reply
                found = (await client.get(f"/v1/sessions/{sid}/messages",
                                          headers={"Authorization": f"Bearer {key}"})).json()
                last = found["data"][-1]
                if last["role"] == "assistant" and last["status"] != "streaming":
                    break
                await asyncio.sleep(0.1)
    assert last["status"] == "interrupted"
    model.token_delay = 0.0


async def test_voice_calls_with_real_models(database_url: str, tmp_path: Path,
                                            whisper: WhisperRecogniser) -> None:
    async with FakeOpenAIServer() as model:
        settings = Settings(data_dir=tmp_path, database_url=database_url)
        alice, bob = await member_keys(settings, [TINA, MOHIT])
        providers = json.dumps({"fake": {"kind": "openai", "base_url": model.base_url,
                                         "api_key": "k", "model": "fake", "max_retries": 0}})
        with api_server(database_url, tmp_path, PERSONAE_PROVIDERS=providers,
                        PERSONAE_DEFAULT_PROVIDER="fake") as url:
            ws = url.replace("http", "ws")
            english = await open_session(url, alice, "mohit")
            hindi = await open_session(url, bob, "tina")
            latencies: list[float] = []
            heard_en, heard_hi = await asyncio.gather(
                english_voice_turn(f"{ws}/v1/sessions/{english}/voice", alice, whisper,
                                   latencies),
                hindi_typed_turn(f"{ws}/v1/sessions/{hindi}/voice", bob))
            print(f"voice turn: last voiced sample to first reply audio "
                  f"{latencies[0] * 1000:.0f} ms")
            assert not any("नमस्ते" in json.dumps(e, ensure_ascii=False)
                           for e in heard_en.events)
            assert not any("weather" in json.dumps(e).lower() for e in heard_hi.events)
            with pytest.raises(ConnectionClosed) as closed:
                async with connect(f"{ws}/v1/sessions/{english}/voice?api_key={bob}") as other:
                    await other.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
            await bad_frames_then_a_turn(f"{ws}/v1/sessions/{english}/voice", alice)
            await disconnect_mid_reply(f"{ws}/v1/sessions/{english}/voice", url, alice,
                                       model, english)
