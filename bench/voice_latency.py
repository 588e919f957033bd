"""Voice latency: from the end of the user's speech to the first byte of the reply's audio.

Target (one session, this 2-core machine, the embedded default model): **p50 <= 1.0 s,
p95 <= 1.5 s** from the last sample of the user's speech (so the wait for the
end-of-turn silence counts) to the first binary audio frame of the reply.

Layout: a real ``personae.api.app:create_app`` server (SQLite in a temp dir, the
default embedded model, the offline voice stack) pinned to CPU 0; the client on CPU 1.
Questions are synthesised once (the Piper voice and espeak-ng, resampled to 16 kHz,
cut after their last voiced sample), then each is streamed over
``WS /v1/sessions/{id}/voice`` at real-time pace in 20 ms frames, followed by silence
until the reply's audio starts; the client then "plays" the reply (waits its duration)
before the next question, as a person would.

Reported, for one session and for four at once: that latency's p50/p95, and each stage
from the server's ``timings`` event (end of speech -> transcript -> first token ->
first audio); the transcripts' word error rate against the questions; the server's
RSS. Baseline, measured in the same run: the same questions typed over the text socket
(time to the first delta), so the voice stack's share reads as a ratio.

Run: ``.venv/bin/python bench/voice_latency.py [--quick] [--questions N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from _common import (
    CLIENT_CPU,
    HOST,
    ROOT,
    Report,
    Server,
    admin_key,
    median,
    percentile,
    personae_env,
    pin_self,
    sqlite_url,
    start_server,
    stop_server,
)
from model_choice import prepared_models_dir

QUESTIONS = (
    "What time does the museum open on Sunday?",
    "Can you recommend a good book about the ocean?",
    "How do I make a cup of green tea?",
    "What is the weather usually like in spring?",
    "Tell me one fun fact about elephants.",
    "Which planet is closest to the sun?",
    "How long should I boil an egg?",
    "What is a good name for a small dog?",
    "Why is the sky blue during the day?",
    "How many days are there in a leap year?",
)
RATE = 16_000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
TARGET_P50, TARGET_P95 = 1.0, 1.5
PERSONA = {
    "id": "voice-concierge", "name": "Sam", "role": "concierge", "language": "en",
    "gender": "male", "description": "A friendly hotel concierge who answers briefly.",
    "system_prompt": "You are Sam, a friendly hotel concierge. Answer in one or two short "
                     "sentences.",
    "greetings": ["Hello, I am Sam."],
    "model": {"max_tokens": 60},
}


@dataclass
class Turn:
    latency_s: float
    transcript: str
    question: str
    timings: dict[str, float] = field(default_factory=dict)


def synthesise(questions: list[str]) -> list[bytes]:
    """Each question as 16 kHz PCM16: even ones by the Piper voice, odd by espeak-ng."""
    from personae.providers.piper_tts import PiperSynthesiser
    from personae.providers.speech import AudioChunk, VoiceChoice
    from personae.voice.audio import resample

    async def piper(text: str) -> AudioChunk:
        synth = PiperSynthesiser("piper")
        parts = [c async for c in synth.synthesize(text, voice=VoiceChoice())]
        return AudioChunk(b"".join(p.pcm for p in parts), parts[0].sample_rate)

    def espeak(text: str) -> AudioChunk:
        import io
        import wave
        wav = subprocess.run(["espeak-ng", "--stdout", "-v", "en-us", text],
                             capture_output=True, check=True).stdout
        with wave.open(io.BytesIO(wav)) as reader:
            return AudioChunk(reader.readframes(reader.getnframes()), reader.getframerate())

    out = []
    for index, text in enumerate(questions):
        chunk = asyncio.run(piper(text)) if index % 2 == 0 else espeak(text)
        out.append(trailing_silence_cut(resample(chunk, RATE).pcm))
    return out


def trailing_silence_cut(pcm: bytes, level: int = 300) -> bytes:
    """The clip up to its last voiced sample, so that the clock starts at the end of the
    speech itself, not of the synthesiser's trailing silence."""
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2")
    voiced = np.flatnonzero(np.abs(samples.astype(np.int32)) > level)
    end = int(voiced[-1]) + 1 if voiced.size else len(samples)
    return samples[:end].tobytes()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate, case and punctuation aside."""
    import jiwer

    def words(text: str) -> str:
        return " ".join(re.findall(r"[a-z0-9']+", text.lower())) or "-"

    return float(jiwer.wer(words(reference), words(hypothesis)))


class VoiceClient:
    """One voice socket, played like a person: speak, wait for the reply, listen to it."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.events: asyncio.Queue[dict[str, Any] | bytes] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.socket:
            await self.events.put(frame if isinstance(frame, bytes) else json.loads(frame))

    async def settle(self, quiet_s: float = 1.0) -> None:
        """Let the greeting (or anything still arriving) finish, then its playback."""
        played_ms = 0.0
        while True:
            try:
                event = await asyncio.wait_for(self.events.get(), quiet_s)
            except TimeoutError:
                break
            if isinstance(event, dict) and event.get("type") == "audio_end":
                played_ms += float(event.get("audio_ms", 0))
        await asyncio.sleep(played_ms / 1000)

    async def ask(self, pcm: bytes, question: str) -> Turn:
        silence = bytes(FRAME_BYTES)
        start = time.perf_counter()
        for offset in range(0, len(pcm), FRAME_BYTES):
            await self._pace(start, offset)
            await self.socket.send(pcm[offset:offset + FRAME_BYTES].ljust(FRAME_BYTES, b"\0"))
        last_sample = time.perf_counter()
        sender = asyncio.create_task(self._silence(silence, last_sample))
        try:
            return await self._reply(last_sample, question)
        finally:
            sender.cancel()

    async def _pace(self, start: float, offset: int) -> None:
        due = start + offset / (RATE * 2)
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)

    async def _silence(self, frame: bytes, since: float) -> None:
        sent = 0
        while True:
            await self._pace(since, sent)
            await self.socket.send(frame)
            sent += len(frame)

    async def _reply(self, last_sample: float, question: str) -> Turn:
        first_audio: float | None = None
        transcript, timings, audio_ms, done = "", {}, 0.0, False
        while not (done and first_audio is not None and timings):
            event = await asyncio.wait_for(self.events.get(), 60)
            if isinstance(event, bytes):
                first_audio = first_audio or time.perf_counter()
                continue
            kind = event.get("type")
            if kind == "transcript":
                transcript = event.get("text", "")
            elif kind == "timings":
                timings = {k: float(v) for k, v in event.items()
                           if k != "type" and isinstance(v, int | float)}
            elif kind == "audio_end":
                audio_ms += float(event.get("audio_ms", 0))
            elif kind in ("done", "error"):
                done = True
                if kind == "error" and first_audio is None:
                    raise RuntimeError(f"turn failed: {event}")
        assert first_audio is not None
        await self.settle(0.5)  # the rest of the reply's audio, then its playback
        await asyncio.sleep(max(0.0, audio_ms / 1000 - (time.perf_counter() - first_audio)))
        return Turn(first_audio - last_sample, transcript, question, timings)

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()


async def open_session(api: httpx.AsyncClient) -> str:
    response = await api.post("/v1/sessions", json={"persona_id": PERSONA["id"]})
    response.raise_for_status()
    return str(response.json()["session"]["id"])


async def voice_turns(server: Server, key: str, audio: list[bytes],
                      questions: list[str]) -> list[Turn]:
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}",
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        session = await open_session(api)
    url = f"ws://{HOST}:{server.port}/v1/sessions/{session}/voice?api_key={key}"
    async with connect(url, max_size=None) as socket:
        client = VoiceClient(socket)
        await client.settle()
        turns = [await client.ask(pcm, q) for pcm, q in zip(audio, questions, strict=True)]
        await client.close()
    return turns


async def text_turns(server: Server, key: str, questions: list[str]) -> list[float]:
    """The baseline: the same questions typed; seconds to the first delta."""
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}",
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        session = await open_session(api)
    url = f"ws://{HOST}:{server.port}/v1/sessions/{session}/ws?api_key={key}"
    out = []
    async with connect(url, max_size=None) as socket:
        await socket.recv()  # ready
        for question in questions:
            sent = time.perf_counter()
            await socket.send(json.dumps({"type": "message", "content": question}))
            first = None
            while True:
                event = json.loads(await socket.recv())
                if event["type"] == "delta" and first is None:
                    first = time.perf_counter() - sent
                if event["type"] in ("done", "error"):
                    break
            out.append(first if first is not None else float("nan"))
    return out


def server_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report_turns(report: Report, label: str, turns: list[Turn]) -> tuple[float, float]:
    latencies = [t.latency_s for t in turns]
    p50, p95 = median(latencies), percentile(latencies, 95)
    report.value(f"{label}_turns", len(turns))
    report.value(f"{label}_first_audio_p50_s", p50)
    report.value(f"{label}_first_audio_p95_s", p95)
    for stage in ("end_of_speech_to_transcript_ms", "transcript_to_first_token_ms",
                  "first_token_to_first_audio_ms", "end_of_speech_to_first_audio_ms"):
        values = [t.timings[stage] for t in turns if stage in t.timings]
        if values:
            report.value(f"{label}_{stage}_p50", median(values), 1)
    wer = [word_error_rate(t.question, t.transcript) for t in turns]
    report.value(f"{label}_word_error_rate", sum(wer) / len(wer))
    return p50, p95


def start(data: Path) -> tuple[Server, str]:
    url = sqlite_url(data)
    (data / "models").symlink_to(prepared_models_dir(), target_is_directory=True)
    key = admin_key(url)
    env = personae_env(data, url)
    server = start_server("voice", "personae.api.app:create_app", env, timeout=180)
    response = httpx.post(f"http://{HOST}:{server.port}/v1/personas",
                          json={"definition": PERSONA, "global": True},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30)
    response.raise_for_status()
    return server, key


async def scenario(server: Server, key: str, audio: list[bytes], questions: list[str],
                   report: Report) -> None:
    await voice_turns(server, key, audio[:1], questions[:1])  # load every model once
    typed = await text_turns(server, key, questions)
    report.value("baseline_text_first_delta_p50_s", median(typed))
    solo = await voice_turns(server, key, audio, questions)
    p50, p95 = report_turns(report, "one_session", solo)
    report.value("one_session_p50_ratio_to_text_first_delta", p50 / median(typed), 2)
    half = max(1, len(questions) // 2)
    many = await asyncio.gather(*(voice_turns(server, key, audio[:half], questions[:half])
                                  for _ in range(4)))
    report_turns(report, "four_sessions", [t for turns in many for t in turns])
    report.value("server_rss_mb", server_rss_mb(server.process.pid), 1)
    report.check("one_session_p50", p50 <= TARGET_P50, f"{p50:.3f} s <= {TARGET_P50} s")
    report.check("one_session_p95", p95 <= TARGET_P95, f"{p95:.3f} s <= {TARGET_P95} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 questions")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    args = parser.parse_args()
    questions = list(QUESTIONS[: 4 if args.quick else args.questions])
    audio = synthesise(questions)
    pin_self(CLIENT_CPU)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="bench-voice-") as tmp:
        server, key = start(Path(tmp))
        try:
            asyncio.run(scenario(server, key, audio, questions, report))
        finally:
            stop_server(server)
    return report.finish()


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
