"""A voice call driven directly: scripted model, recogniser and synthesiser, a real
database, real PCM through the real endpointer (an energy detector stands in for
Silero, so speech is a tone and silence is silence)."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from personae.auth.principal import Principal
from personae.config import ProviderConfig, Settings
from personae.providers.fake import ScriptedLLM
from personae.providers.fake.scripted_speech import ScriptedRecogniser, ScriptedSynthesiser
from personae.providers.speech import Voice
from personae.runtime import Runtime
from personae.voice.call import VoiceCall
from tests.support.personas import MOHIT, TINA
from tests.support.runtime import MEMBERS, create_global_personas, create_people, open_runtime

FRAME_BYTES = 640  # 20 ms of 16 kHz PCM16, as a client sends it
WAIT = 10.0  # seconds any awaited event may take (a bound, not a timing)
AMELIE = {"id": "amelie", "name": "Amélie", "language": "fr", "greetings": ["Bonjour."]}


class EnergyProbability:
    def __call__(self, frame: bytes) -> float:
        samples = struct.unpack(f"<{len(frame) // 2}h", frame)
        return 0.9 if sum(abs(s) for s in samples) / len(samples) > 1000 else 0.0

    def reset(self) -> None:
        pass


class EnergyDetector:
    name = "energy"
    frame_samples = 512

    def open(self) -> EnergyProbability:
        return EnergyProbability()

    async def aclose(self) -> None:
        pass


def speech(ms: int) -> bytes:
    samples = ms * 16
    return struct.pack(f"<{samples}h", *((6000 if (i // 20) % 2 else -6000)
                                         for i in range(samples)))


def silence(ms: int) -> bytes:
    return bytes(ms * 32)


class Clock:
    """The playback clock, moved by the test (the client's playing is simulated)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    runtime: Runtime
    alice: Principal
    bob: Principal
    llm: ScriptedLLM
    stt: ScriptedRecogniser
    piper: ScriptedSynthesiser
    espeak: ScriptedSynthesiser
    events: list[dict[str, Any]] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)
    gate: Callable[[dict[str, Any]], bool] | None = None  # hold the turn at this event
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_event(self, event: dict[str, Any]) -> None:
        json.dumps(event)  # every event must be JSON
        self.events.append(event)
        self._changed.set()
        if self.gate is not None and self.gate(event):
            self.gate = None
            self.held.set()
            await self.release.wait()

    async def send_audio(self, data: bytes) -> None:
        self.audio.append(data)

    async def until(self, test: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while True:
                for event in self.events:
                    if test(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def call(self, persona_id: str = "mohit") -> VoiceCall:
        session, _ = await self.runtime.conversations.open(self.alice, persona_id)
        call = VoiceCall(self.runtime.conversations, self.runtime.speech,
                         self.runtime.settings, self.alice, session.id, self.send_event,
                         self.send_audio)
        call.speaker.clock = self.clock
        await call.start()
        return call


@pytest.fixture
async def rig(database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    settings = Settings(data_dir=tmp_path, database_url=database_url,
                        default_provider="scripted", anonymous_loopback=False,
                        providers={"scripted": ProviderConfig(kind="scripted")})
    async with open_runtime(settings) as runtime:
        people = await create_people(runtime, MEMBERS)
        await create_global_personas(runtime, [MOHIT, TINA, AMELIE])
        llm = runtime.providers.get("scripted")
        assert isinstance(llm, ScriptedLLM)
        stt = ScriptedRecogniser(["what about mars"], languages=frozenset({"en"}))
        piper = ScriptedSynthesiser("piper", voices=[
            Voice("joe", "en-US", "male", "neural", "piper")])
        espeak = ScriptedSynthesiser("espeak", voices=[
            Voice("hi", "hi", "female", "formant", "espeak"),
            Voice("en-us+f3", "en-US", "female", "formant", "espeak")])
        runtime.speech.register_recogniser("whisper", stt)
        runtime.speech.register_synthesiser("piper", piper)
        runtime.speech.register_synthesiser("espeak", espeak)
        runtime.speech.register_detector("silero", EnergyDetector())
        yield Rig(runtime, people["alice"], people["bob"], llm, stt, piper, espeak)


async def speak(call: VoiceCall, *pieces: bytes) -> None:
    data = b"".join(pieces)
    for start in range(0, len(data), FRAME_BYTES):
        await call.receive_audio(data[start:start + FRAME_BYTES])


async def greeted(rig: Rig) -> None:
    """The greeting has been sent and (on the simulated clock) played."""
    await rig.until(lambda e: e["type"] == "audio_end")
    rig.clock.now += 60


def index_of(rig: Rig, test: Callable[[dict[str, Any]], bool]) -> int:
    return next(i for i, e in enumerate(rig.events) if test(e))


async def test_a_voice_turn_streams_events_in_order_and_is_recorded(rig: Rig) -> None:
    reply = "Mars is bright tonight, my dear friend. Venus is near. Rest well!"
    rig.llm.queue(reply)
    call = await rig.call()
    try:
        ready = rig.events[0]
        assert ready["type"] == "ready" and ready["voice"]["synthesiser"] == "piper"
        assert ready["voice"]["voice_id"] == "joe" and ready["voice"]["recogniser"] == "whisper"
        assert ready["input"] == {"format": "pcm16", "sample_rate": 16000}
        await greeted(rig)
        assert rig.piper.calls[0].text == "Hello, I am Mohit."
        await speak(call, silence(200), speech(800), silence(600))
        timings = await rig.until(lambda e: e["type"] == "timings")
    finally:
        await call.close()
    order = [index_of(rig, lambda e, k=k: e["type"] == k) for k in
             ("speech_started", "speech_stopped", "transcript", "message", "delta", "done")]
    assert order == sorted(order)
    transcript = rig.events[order[2]]
    assert transcript["text"] == "what about mars" and transcript["audio_ms"] > 800
    starts = [e for e in rig.events[order[0]:] if e["type"] == "audio_start"]
    assert [s["text"] for s in starts] == ["Mars is bright tonight,", "my dear friend.",
                                           "Venus is near.", "Rest well!"]
    assert [s["index"] for s in starts] == [0, 1, 2, 3]
    assert set(timings) == {"type", "end_of_speech_to_transcript_ms",
                            "transcript_to_first_token_ms", "first_token_to_first_audio_ms",
                            "end_of_speech_to_first_audio_ms"}
    assert timings["end_of_speech_to_first_audio_ms"] is not None
    assert all(len(frame) <= 22_050 * 2 // 10 for frame in rig.audio)  # <= 100 ms frames
    history = await rig.runtime.conversations.history(rig.alice, call.session_id)
    user, answer = history[-2], history[-1]
    assert user.content == "what about mars"
    assert user.meta["audio"]["recogniser"] == "whisper"
    assert user.meta["audio"]["confidence"] == 1.0
    assert answer.content == reply
    assert answer.meta["voice"]["synthesiser"] == "piper" and answer.meta["voice"]["audio_ms"] > 0
    assert set(answer.meta["timings"]) == set(timings) - {"type"}
    metrics = {row["metric"]: row for row in
               await rig.runtime.conversations.store.metrics(answer.persona_id)}
    assert metrics["voice_turns"]["count"] == 1
    assert metrics["voice_first_audio_ms"]["total"] == timings["end_of_speech_to_first_audio_ms"]
    assert metrics["voice_stt_ms"]["total"] == timings["end_of_speech_to_transcript_ms"]


async def test_the_speculative_transcript_is_used_when_no_more_speech_came(rig: Rig) -> None:
    call = await rig.call()
    try:
        await greeted(rig)
        await speak(call, speech(600), silence(600))
        await rig.until(lambda e: e["type"] == "timings")
    finally:
        await call.close()
    assert call.hearing is not None
    assert call.hearing.speculations_used == 1 and call.hearing.speculations_discarded == 0
    assert len(rig.stt.calls) == 1


async def test_more_speech_after_a_pause_discards_the_speculation(rig: Rig) -> None:
    rig.stt = ScriptedRecogniser(["what about", "what about mars and venus"],
                                 languages=frozenset({"en"}))
    rig.runtime.speech.register_recogniser("whisper", rig.stt)
    call = await rig.call()
    try:
        await greeted(rig)
        await speak(call, speech(600), silence(250), speech(600))
        await call.receive_text(json.dumps({"type": "end_of_speech"}))  # push-to-talk
        transcript = await rig.until(lambda e: e["type"] == "transcript")
        await rig.until(lambda e: e["type"] == "timings")
    finally:
        await call.close()
    assert call.hearing is not None and call.hearing.speculations_discarded == 1
    assert transcript["text"] == "what about mars and venus"
    assert rig.stt.calls[1].audio.duration_ms > rig.stt.calls[0].audio.duration_ms + 500


async def test_speech_over_a_streaming_reply_stops_it_and_keeps_what_was_heard(
        rig: Rig) -> None:
    rig.llm.queue("The first sentence is this one. " + " ".join(f"w{i}" for i in range(60)))
    call = await rig.call()
    try:
        await greeted(rig)
        rig.gate = lambda e: e["type"] == "delta" and "w3" in e["text"]
        await speak(call, speech(600), silence(600))
        async with asyncio.timeout(WAIT):
            await rig.held.wait()
        heard_at = index_of(rig, lambda x: x["type"] == "transcript")
        await rig.until(lambda e: e["type"] == "audio_end" and e["index"] == 0
                        and rig.events.index(e) > heard_at)
        rig.clock.now += 30  # the first sentence has played
        rig.release.set()
        await speak(call, speech(200))
        interrupted = await rig.until(lambda e: e["type"] == "interrupted")
    finally:
        await call.close()
    assert interrupted["spoken"] == "The first sentence is this one."
    assert interrupted["message"]["status"] == "interrupted"
    saved = (await rig.runtime.conversations.history(rig.alice, call.session_id))[-1]
    assert saved.status == "interrupted"
    assert saved.content == "The first sentence is this one."  # what was heard
    assert saved.meta["written"].startswith("The first sentence is this one. w0 w1 w2 w3")
    assert saved.meta["spoken"] == "The first sentence is this one."
    assert saved.meta["interrupted_by"] == "speech"
    assert "done" not in rig.kinds()


async def test_speech_while_the_reply_still_plays_stops_the_audio(rig: Rig) -> None:
    rig.llm.queue("Short one. And then a much longer second sentence follows here.")
    call = await rig.call()
    try:
        await greeted(rig)
        await speak(call, speech(600), silence(600))
        await rig.until(lambda e: e["type"] == "timings")
        first = next(e for e in reversed(rig.events) if e["type"] == "audio_end"
                     and e["index"] == 0)
        rig.clock.now += first["audio_ms"] / 1000 + 0.01  # only the first has played
        await speak(call, speech(200))
        interrupted = await rig.until(lambda e: e["type"] == "interrupted")
    finally:
        await call.close()
    assert interrupted["spoken"] == "Short one."
    saved = (await rig.runtime.conversations.history(rig.alice, call.session_id))[-1]
    assert saved.status == "interrupted"  # the user spoke over it: it keeps what was heard
    assert saved.content == "Short one."
    assert saved.meta["written"] == ("Short one. And then a much longer second sentence "
                                     "follows here.")
    assert saved.meta["spoken"] == "Short one." and saved.meta["interrupted_by"] == "speech"
    assert interrupted["message_id"] == saved.id


async def test_a_switch_greets_in_the_new_personas_voice_and_warns(rig: Rig) -> None:
    call = await rig.call()
    try:
        await greeted(rig)
        await call.receive_text(json.dumps({"type": "switch", "persona_id": "tina"}))
        await rig.until(lambda e: e["type"] == "audio_end" and e["index"] == 0
                        and rig.events.index(e) > rig.kinds().index("persona_switched"))
    finally:
        await call.close()
    assert rig.espeak.calls[0].text == "नमस्ते, मैं तीना हूं।"
    assert rig.espeak.calls[0].voice.voice_id == "hi"
    warnings = [e["message"] for e in rig.events if e["type"] == "warning"]
    assert any("no speech recogniser for Hindi" in w for w in warnings)
    assert call.hearing is None


async def test_a_typed_message_is_spoken_too(rig: Rig) -> None:
    rig.llm.queue("Typed replies are spoken.")
    call = await rig.call()
    try:
        await greeted(rig)
        await call.receive_text(json.dumps({"type": "message", "content": "hello"}))
        await rig.until(lambda e: e["type"] == "done")
        await rig.until(lambda e: rig.kinds().count("audio_end") == 2)
    finally:
        await call.close()
    assert [c.text for c in rig.piper.calls][-1] == "Typed replies are spoken."
    assert "timings" not in rig.kinds()


async def test_no_recogniser_warns_once_and_ignores_audio(rig: Rig) -> None:
    rig.llm.queue("ठीक है।")
    call = await rig.call("tina")
    try:
        assert rig.events[0]["voice"]["recogniser"] is None
        assert any("Hindi" in w for w in rig.events[0]["warnings"])
        await speak(call, speech(600), silence(600), speech(600), silence(600))
        await call.receive_text(json.dumps({"type": "message", "content": "नमस्ते"}))
        await rig.until(lambda e: e["type"] == "done")
    finally:
        await call.close()
    assert rig.kinds().count("warning") == 1
    assert rig.stt.calls == [] and "speech_started" not in rig.kinds()
    assert rig.espeak.calls[-1].text == "ठीक है।"


async def test_no_synthesiser_means_text_only_with_a_warning(rig: Rig) -> None:
    call = await rig.call("amelie")
    try:
        await call.receive_text(json.dumps({"type": "message", "content": "bonjour"}))
        await rig.until(lambda e: e["type"] == "done")
    finally:
        await call.close()
    ready = rig.events[0]
    assert ready["voice"]["synthesiser"] is None
    assert any("no offline voice for French" in w for w in ready["warnings"])
    assert "audio_start" not in rig.kinds() and rig.audio == []


async def test_disconnect_mid_reply_leaves_no_task_and_the_reply_interrupted(
        rig: Rig) -> None:
    rig.llm.queue(" ".join(f"word{i}." for i in range(80)))
    call = await rig.call()
    await greeted(rig)
    rig.gate = lambda e: e["type"] == "delta" and "word5" in e["text"]
    await speak(call, speech(600), silence(600))
    async with asyncio.timeout(WAIT):
        await rig.held.wait()
    await call.close()
    rig.release.set()
    others = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    assert not [t for t in others if t.get_name().startswith(("voice", "turn"))]  # the call's own
    if others:  # the model stream's reader, cancelled with the turn, finishes closing
        await asyncio.wait(others, timeout=WAIT)
    assert all(t.done() for t in others)
    saved = (await rig.runtime.conversations.history(rig.alice, call.session_id))[-1]
    assert saved.role == "assistant" and saved.status == "interrupted"
    assert "word4." in saved.content and "word79" not in saved.content
    assert saved.meta["interrupted_by"] == "disconnect" and "spoken" in saved.meta


@pytest.mark.parametrize(("frame", "code"), [
    ("not json", "invalid_input"),
    (json.dumps({"type": "dance"}), "invalid_input"),
    (json.dumps({"type": "start", "format": "mp4"}), "invalid_input"),
    (json.dumps({"type": "start", "sample_rate": 5}), "invalid_input"),
    (json.dumps({"type": "message", "content": 5}), "invalid_input"),
    (json.dumps({"type": "message", "content": "x" * 70_000}), "too_large"),
])
async def test_bad_requests_get_an_error_and_the_call_goes_on(rig: Rig, frame: str,
                                                              code: str) -> None:
    call = await rig.call()
    try:
        await call.receive_text(frame)
        error = await rig.until(lambda e: e["type"] == "error")
        rig.llm.queue("Still here.")
        await call.receive_text(json.dumps({"type": "message", "content": "hi"}))
        await rig.until(lambda e: e["type"] == "done")
    finally:
        await call.close()
    assert error["error"]["code"] == code and error["error"]["status"] < 500


async def test_an_oversized_audio_frame_is_refused(rig: Rig) -> None:
    call = await rig.call()
    try:
        await call.receive_audio(bytes(65 * 1024))
        error = await rig.until(lambda e: e["type"] == "error")
    finally:
        await call.close()
    assert error["error"]["code"] == "too_large" and error["error"]["status"] == 413


async def test_a_declared_rate_is_resampled(rig: Rig) -> None:
    call = await rig.call()
    try:
        await greeted(rig)
        await call.receive_text(json.dumps({"type": "start", "format": "pcm16",
                                            "sample_rate": 48_000}))
        loud = speech(600)
        tripled = b"".join(loud[i:i + 2] * 3 for i in range(0, len(loud), 2))
        await speak(call, tripled, silence(1800))
        transcript = await rig.until(lambda e: e["type"] == "transcript")
        await rig.until(lambda e: e["type"] == "timings")
    finally:
        await call.close()
    assert 550 <= transcript["audio_ms"] <= 1300


async def test_a_browser_webm_opus_stream_is_heard(rig: Rig) -> None:
    import io

    import av
    buffer = io.BytesIO()
    loud = speech(800) + silence(1200)
    with av.open(buffer, mode="w", format="webm") as output:
        stream = output.add_stream("libopus", rate=48_000, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(loud) // 2)
        frame.planes[0].update(loud)
        frame.sample_rate = 16_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    data = buffer.getvalue()
    call = await rig.call()
    try:
        await greeted(rig)
        await call.receive_text(json.dumps({"type": "start", "format": "webm"}))
        for start in range(0, len(data), 997):  # MediaRecorder cuts anywhere
            await call.receive_audio(data[start:start + 997])
        await call.receive_text(json.dumps({"type": "end_of_speech"}))
        transcript = await rig.until(lambda e: e["type"] == "transcript")
    finally:
        await call.close()
    assert transcript["text"] == "what about mars"
    assert 700 <= transcript["audio_ms"] <= 1400


async def test_a_message_during_a_reply_is_refused_and_the_reply_goes_on(rig: Rig) -> None:
    rig.llm.queue("The reply being spoken now. " + " ".join(f"w{i}" for i in range(40)))
    call = await rig.call()
    try:
        await greeted(rig)
        rig.gate = lambda e: e["type"] == "delta" and "w3" in e["text"]
        await call.receive_text(json.dumps({"type": "message", "content": "first"}))
        async with asyncio.timeout(WAIT):
            await rig.held.wait()
        await call.receive_text(json.dumps({"type": "message", "content": "second"}))
        refused = await rig.until(lambda e: e["type"] == "error")
        rig.release.set()
        await rig.until(lambda e: e["type"] == "done")
        await rig.until(lambda e: e["type"] == "audio_end" and e["index"] == 1
                        and rig.kinds().count("audio_end") >= 3)
    finally:
        await call.close()
    assert refused["error"]["code"] == "turn_in_progress"
    assert "interrupted" not in rig.kinds()
    assert [c.text for c in rig.piper.calls][1] == "The reply being spoken now."


async def test_utterances_faster_than_recognition_are_refused_not_queued(rig: Rig) -> None:
    slow = ScriptedRecogniser(["one", "two", "three", "four"], languages=frozenset({"en"}),
                              delay=0.5)
    rig.runtime.speech.register_recogniser("whisper", slow)
    call = await rig.call()
    try:
        await greeted(rig)
        await speak(call, *[speech(300) + silence(500) for _ in range(4)])  # at once
        refused = await rig.until(lambda e: e["type"] == "error"
                                  and e["error"]["code"] == "too_large")
        await rig.until(lambda e: e["type"] == "transcript")
    finally:
        await call.close()
    assert "real-time pace" in refused["error"]["message"]
    assert len(slow.calls) <= 2 + 2  # at most two utterances, each maybe speculated first
