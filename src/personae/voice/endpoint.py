"""Streaming end-of-turn detection: voice activity probabilities in, utterances out.

Hysteresis keeps a noisy frame from starting or ending a turn: speech starts only
after a few frames at or over ``start_threshold``, and goes on while frames stay over
``stop_threshold``. A little audio from before the start (the pre-roll) is kept, so
the first syllable, quieter than the detector's threshold, is not cut. A short pause
is announced first (:class:`SpeechPaused`), so recognition can start while the
endpointer still waits to be sure the turn has ended.
"""

from __future__ import annotations

import math
from collections import deque

from personae.providers.speech import (
    RECOGNITION_RATE,
    SAMPLE_WIDTH,
    AudioChunk,
    SpeechProbability,
)
from personae.voice.frames import SpeechDiscarded, SpeechPaused, SpeechStarted, SpeechStopped

EndpointFrame = SpeechStarted | SpeechPaused | SpeechStopped | SpeechDiscarded


class Endpointer:
    """Cuts one input stream (mono PCM16, 16 kHz) into utterances."""

    def __init__(self, probability: SpeechProbability, frame_samples: int,
                 end_silence_ms: float, *, pause_ms: float = 160, min_speech_ms: float = 100,
                 pre_roll_ms: float = 250, max_utterance_ms: float = 30_000,
                 start_frames: int = 2, start_threshold: float = 0.5,
                 stop_threshold: float = 0.35) -> None:
        self.probability = probability
        self.frame_bytes = frame_samples * SAMPLE_WIDTH
        self.frame_ms = frame_samples * 1000 / RECOGNITION_RATE
        self.end_silence_ms = end_silence_ms
        self.pause_ms = min(pause_ms, end_silence_ms)
        self.min_speech_ms = min_speech_ms
        self.max_utterance_ms = max_utterance_ms
        self.start_frames = start_frames
        self.start_threshold, self.stop_threshold = start_threshold, stop_threshold
        self._pre_roll: deque[bytes] = deque(
            maxlen=max(1, round(pre_roll_ms / self.frame_ms)) + start_frames)
        self._pending = b""
        self._frames_seen = 0
        self._voiced_run = 0
        self._utterance: list[bytes] | None = None
        self._reset_utterance_state()

    @property
    def speaking(self) -> bool:
        return self._utterance is not None

    @property
    def clock_ms(self) -> float:
        """Audio received so far, in ms (the stream's clock)."""
        return self._frames_seen * self.frame_ms

    def push(self, chunk: AudioChunk | bytes) -> list[EndpointFrame]:
        """Take more audio; the frames it completed."""
        pcm = chunk.pcm if isinstance(chunk, AudioChunk) else chunk
        data, out = self._pending + pcm, []
        whole = len(data) - len(data) % self.frame_bytes
        for start in range(0, whole, self.frame_bytes):
            out.extend(self._frame(data[start:start + self.frame_bytes]))
        self._pending = data[whole:]
        return out

    def end_of_speech(self) -> list[EndpointFrame]:
        """The client says the turn is over (push-to-talk): end it now."""
        return self._finish() if self.speaking else []

    def _frame(self, frame: bytes) -> list[EndpointFrame]:
        probability = self.probability(frame)
        self._frames_seen += 1
        if self._utterance is None:
            return self._idle(frame, probability)
        return self._in_speech(frame, probability)

    def _idle(self, frame: bytes, probability: float) -> list[EndpointFrame]:
        self._pre_roll.append(frame)
        self._voiced_run = self._voiced_run + 1 if probability >= self.start_threshold else 0
        if self._voiced_run < self.start_frames:
            return []
        self._utterance = list(self._pre_roll)
        self._pre_roll.clear()
        self._reset_utterance_state()
        self._started_ms = self.clock_ms - self.start_frames * self.frame_ms
        self._voiced_end = len(self._utterance)
        self._last_voiced_ms = self.clock_ms
        return [SpeechStarted(self._started_ms)]

    def _in_speech(self, frame: bytes, probability: float) -> list[EndpointFrame]:
        assert self._utterance is not None
        self._utterance.append(frame)
        if probability >= self.stop_threshold:
            self._voiced_end, self._last_voiced_ms = len(self._utterance), self.clock_ms
            self._paused = False
            out: list[EndpointFrame] = []
        else:
            out = self._silence()
        if self._utterance is not None and self._utterance_ms() >= self.max_utterance_ms:
            out.extend(self._finish())
        return out

    def _silence(self) -> list[EndpointFrame]:
        silent_ms = self.clock_ms - self._last_voiced_ms
        if silent_ms >= self.end_silence_ms:
            return self._finish()
        long_enough = self._last_voiced_ms - self._started_ms >= self.min_speech_ms
        if silent_ms >= self.pause_ms and not self._paused and long_enough:
            self._paused = True
            return [SpeechPaused(self._last_voiced_ms, self._audio())]
        return []

    def _finish(self) -> list[EndpointFrame]:
        voiced_ms = self._last_voiced_ms - self._started_ms
        audio = self._audio()
        self._utterance = None
        self._voiced_run = 0
        if voiced_ms < self.min_speech_ms:
            return [SpeechDiscarded(self._last_voiced_ms)]
        return [SpeechStopped(self._last_voiced_ms, audio)]

    def _audio(self) -> AudioChunk:
        """The utterance up to its last voiced frame plus ``pause_ms`` of what followed,
        so the audio at a pause and at the end are the same when no speech came
        between (and a speculative transcript is exactly the final one)."""
        assert self._utterance is not None
        tail = math.ceil(self.pause_ms / self.frame_ms - 1e-9)
        return AudioChunk(b"".join(self._utterance[: self._voiced_end + tail]),
                          RECOGNITION_RATE)

    def _utterance_ms(self) -> float:
        return len(self._utterance or ()) * self.frame_ms

    def _reset_utterance_state(self) -> None:
        self._paused = False
        self._started_ms = 0.0
        self._last_voiced_ms = 0.0
        self._voiced_end = 0
