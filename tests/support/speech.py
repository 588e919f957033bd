"""Real test audio: speech synthesised by espeak-ng and the Piper voice, silence, noise,
tones, and the word error rate of a transcript.

Everything returns :class:`AudioChunk` (mono PCM16, 16 kHz unless asked otherwise), as
a client or an upload would send it. Resampling uses PyAV's (libswresample's)
resampler, not naive decimation, so the recogniser hears what a real client sends.
"""

from __future__ import annotations

import io
import subprocess
import wave
from functools import cache

import av
import jiwer
import numpy as np

from personae.providers.speech import RECOGNITION_RATE, AudioChunk

ESPEAK = "espeak-ng"


def resample(chunk: AudioChunk, rate: int = RECOGNITION_RATE) -> AudioChunk:
    """``chunk`` (mono) at ``rate``, through libswresample."""
    if chunk.sample_rate == rate:
        return chunk
    samples = np.frombuffer(chunk.pcm, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = chunk.sample_rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    out = [*resampler.resample(frame), *resampler.resample(None)]
    pcm = b"".join(piece.to_ndarray().astype("<i2").tobytes() for piece in out)
    return AudioChunk(pcm, rate)


def wav_chunk(data: bytes) -> AudioChunk:
    """A mono PCM16 WAV (espeak-ng's streamed header included) as one chunk."""
    with wave.open(io.BytesIO(data)) as reader:
        rate = reader.getframerate()
        pcm = b"".join(iter(lambda: reader.readframes(65536), b""))
    return AudioChunk(pcm, rate)


@cache
def espeak_audio(text: str, voice: str = "en-us", rate: int = RECOGNITION_RATE,
                 wpm: int = 160) -> AudioChunk:
    """``text`` spoken by the espeak-ng program (22,050 Hz), resampled to ``rate``."""
    data = subprocess.run([ESPEAK, "--stdout", "-v", voice, "-s", str(wpm)],
                          input=text.encode(), capture_output=True, check=True,
                          timeout=60).stdout
    return resample(wav_chunk(data), rate)


@cache
def piper_audio(text: str, rate: int = RECOGNITION_RATE) -> AudioChunk:
    """``text`` spoken by the Piper joe voice (the real synthesiser), at ``rate``;
    callable from inside a running event loop (it runs its own on a thread)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from personae.providers.piper_tts import PiperSynthesiser
    from personae.providers.speech import VoiceChoice

    async def speak() -> AudioChunk:
        synthesiser = PiperSynthesiser("piper")
        chunks = [chunk async for chunk in synthesiser.synthesize(text, voice=VoiceChoice())]
        return AudioChunk(b"".join(c.pcm for c in chunks), chunks[0].sample_rate)

    with ThreadPoolExecutor(1) as thread:
        return resample(thread.submit(asyncio.run, speak()).result(), rate)


def silence(ms: float, rate: int = RECOGNITION_RATE) -> AudioChunk:
    return AudioChunk(bytes(2 * int(rate * ms / 1000)), rate)


def noise(ms: float, level: float = 0.1, rate: int = RECOGNITION_RATE,
          seed: int = 0) -> AudioChunk:
    """White noise, ``level`` the standard deviation as a fraction of full scale."""
    count = int(rate * ms / 1000)
    samples = np.random.default_rng(seed).normal(0.0, level * 32767, count)
    return AudioChunk(np.clip(samples, -32768, 32767).astype("<i2").tobytes(), rate)


def tone(ms: float, hz: float = 440.0, level: float = 0.3,
         rate: int = RECOGNITION_RATE) -> AudioChunk:
    times = np.arange(int(rate * ms / 1000)) / rate
    samples = level * 32767 * np.sin(2 * np.pi * hz * times)
    return AudioChunk(samples.astype("<i2").tobytes(), rate)


def concat(*chunks: AudioChunk) -> AudioChunk:
    """The chunks one after another (all at the first one's rate)."""
    rate = chunks[0].sample_rate
    return AudioChunk(b"".join(resample(chunk, rate).pcm for chunk in chunks), rate)


def rms(chunk: AudioChunk) -> float:
    """Root mean square level, as a fraction of full scale."""
    samples = np.frombuffer(chunk.pcm, dtype="<i2").astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


_normalise = jiwer.Compose([
    jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
    jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER after lowercasing and stripping punctuation (jiwer)."""
    return float(jiwer.wer(reference, hypothesis or "", reference_transform=_normalise,
                           hypothesis_transform=_normalise))
