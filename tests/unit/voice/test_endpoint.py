"""End of turn from voice activity: scripted probabilities, then real Silero on speech."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from personae.providers.speech import AudioChunk
from personae.voice.endpoint import Endpointer
from personae.voice.frames import SpeechDiscarded, SpeechPaused, SpeechStarted, SpeechStopped

FRAME = 512  # samples: 32 ms at 16 kHz
FRAME_MS = 32.0


class ScriptedProbability:
    """Frame probabilities from a script; each frame's first sample tells its index."""

    def __init__(self, script: Sequence[float]) -> None:
        self.script = list(script)
        self.seen = 0

    def __call__(self, frame: bytes) -> float:
        assert len(frame) == FRAME * 2
        value = self.script[self.seen] if self.seen < len(self.script) else 0.0
        self.seen += 1
        return value

    def reset(self) -> None:
        self.seen = 0


def frames(count: int, first: int = 0) -> bytes:
    """``count`` frames, each filled with its own index (to see which were kept)."""
    return b"".join((first + i).to_bytes(2, "little") * FRAME for i in range(count))


def run(script: Sequence[float], **options: float) -> tuple[list[object], Endpointer]:
    endpointer = Endpointer(ScriptedProbability(script), FRAME,
                            options.pop("end_silence_ms", 400), **options)  # type: ignore[arg-type]
    data = frames(len(script))
    out: list[object] = []
    for start in range(0, len(data), 700):  # pieces that do not line up with frames
        out += endpointer.push(data[start:start + 700])
    return out, endpointer


def indices(audio: AudioChunk) -> list[int]:
    pcm = audio.pcm
    return [int.from_bytes(pcm[i:i + 2], "little") for i in range(0, len(pcm), FRAME * 2)]


def test_a_turn_starts_pauses_and_stops_with_its_pre_roll() -> None:
    script = [0.0] * 20 + [0.9] * 10 + [0.1] * 15
    out, _ = run(script, pre_roll_ms=96)
    assert [type(f) for f in out] == [SpeechStarted, SpeechPaused, SpeechStopped]
    started, paused, stopped = out
    assert isinstance(started, SpeechStarted) and started.at_ms == 20 * FRAME_MS
    assert isinstance(stopped, SpeechStopped) and stopped.at_ms == 30 * FRAME_MS
    assert isinstance(paused, SpeechPaused) and paused.at_ms == stopped.at_ms
    kept = indices(stopped.audio)
    assert kept[:3] == [17, 18, 19]  # the pre-roll: three frames before the start
    assert kept[-1] == 29 + 5  # the last voiced frame and a pause's worth after it
    assert paused.audio == stopped.audio


def test_one_loud_frame_is_not_speech() -> None:
    out, _ = run([0.0, 0.9, 0.0, 0.9, 0.0, 0.0] * 5)
    assert out == []


def test_hysteresis_keeps_a_turn_going_over_middling_frames() -> None:
    script = [0.9] * 5 + [0.4] * 20 + [0.9] * 5 + [0.0] * 14
    out, _ = run(script)
    assert [type(f) for f in out] == [SpeechStarted, SpeechPaused, SpeechStopped]
    assert out[1].at_ms == 30 * FRAME_MS  # type: ignore[attr-defined]


def test_speech_after_a_pause_goes_on_in_the_same_turn() -> None:
    script = [0.9] * 8 + [0.0] * 6 + [0.9] * 8 + [0.0] * 14
    out, _ = run(script)
    assert [type(f) for f in out] == [SpeechStarted, SpeechPaused, SpeechPaused,
                                      SpeechStopped]
    first_pause, stopped = out[1], out[3]
    assert isinstance(first_pause, SpeechPaused) and isinstance(stopped, SpeechStopped)
    assert stopped.at_ms > first_pause.at_ms
    assert len(stopped.audio.pcm) > len(first_pause.audio.pcm)


def test_a_click_is_discarded() -> None:
    out, _ = run([0.0] * 3 + [0.9] * 2 + [0.0] * 14, min_speech_ms=100)
    assert [type(f) for f in out] == [SpeechStarted, SpeechDiscarded]


def test_end_of_speech_ends_the_turn_now() -> None:
    out, endpointer = run([0.9] * 10)
    assert [type(f) for f in out] == [SpeechStarted]
    ended = endpointer.end_of_speech()
    assert [type(f) for f in ended] == [SpeechStopped]
    assert endpointer.end_of_speech() == []


def test_a_turn_is_cut_at_its_longest() -> None:
    out, endpointer = run([0.9] * 30, max_utterance_ms=20 * FRAME_MS)
    assert [type(f) for f in out] == [SpeechStarted, SpeechStopped, SpeechStarted]
    assert endpointer.speaking


@pytest.fixture(scope="module")
def silero():  # type: ignore[no-untyped-def]
    from personae.providers.silero_vad import SileroDetector
    return SileroDetector()


def stream(detector, audio: AudioChunk, end_silence_ms: float = 400):  # type: ignore[no-untyped-def]
    endpointer = Endpointer(detector.open(), detector.frame_samples, end_silence_ms)
    out = []
    for start in range(0, len(audio.pcm), 640):  # 20 ms frames, as a client sends them
        out += endpointer.push(audio.pcm[start:start + 640])
    return out


def test_real_speech_with_silero(silero) -> None:  # type: ignore[no-untyped-def]
    from tests.support.speech import concat, espeak_audio, noise, silence
    speech = espeak_audio("What does my horoscope say about today?")
    audio = concat(silence(500), noise(300, level=0.01), speech, silence(800))
    out = stream(silero, audio)
    kinds = [type(f) for f in out]
    assert kinds[0] is SpeechStarted and kinds[-1] is SpeechStopped
    assert kinds.count(SpeechStopped) == 1
    stopped = out[-1]
    speech_end_ms = 800 + speech.duration_ms
    assert abs(stopped.at_ms - speech_end_ms) < 400
    assert stopped.audio.duration_ms >= speech.duration_ms * 0.8


def test_silero_ignores_silence_and_a_tone(silero) -> None:  # type: ignore[no-untyped-def]
    from tests.support.speech import concat, silence, tone
    out = stream(silero, concat(silence(1000), tone(1000, level=0.3), silence(500)))
    assert not [f for f in out if isinstance(f, SpeechStopped)]
