"""Offline speech recognition: Whisper (faster-whisper, CTranslate2, CPU, int8).

Each model directory is loaded once per process (a module-level cache, filled under
a lock on first use or by :meth:`WhisperRecogniser.warm`) and shared by every
recogniser. Decoding runs on the shared speech pool (:mod:`.speech_threads`), never
on the event loop; the model gets one CTranslate2 worker per pool thread, so the
pool's bound is also the model's.

Decoding is tuned for one short utterance the pipeline already cut out: greedy
(``beam_size=1``, one temperature: no re-decoding), no timestamps, no internal VAD,
and nothing carried over between windows.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderUnavailable
from personae.providers.speech import RECOGNITION_RATE, AudioChunk, Transcript
from personae.providers.speech_threads import run_speech, speech_pool
from personae.providers.whisper_models import BASE, MODELS, PROVIDER, check_installed, model_dir

# Threads per recognition: on a quiet 2-core machine one utterance (tiny.en, a 2-3 s
# question) took 0.24 s with 2 threads against 0.30-0.34 s with 1, interleaved rounds;
# ten at once over the pool's two workers took 3.7 s against 3.0 s. A voice call
# recognises while its language model is idle (the user was speaking), so the turn's
# latency wins over throughput under load: up to 4 threads, never more than the cores.
CPU_THREADS = max(1, min(4, os.cpu_count() or 1))

# Whisper base is usable (FLEURS word error rates in the Whisper paper's appendix
# roughly 10-30%) only for high-resource languages; for the rest, Hindi among them,
# its errors are several times that, so no language beyond these is claimed.
BASE_LANGUAGES = frozenset({"en", "es", "fr", "de", "it", "pt", "nl"})

_models: dict[tuple[Path, int, int], Any] = {}
_models_lock = threading.Lock()


def loaded_model(path: Path, cpu_threads: int, workers: int) -> Any:
    """The process's one WhisperModel for ``path``, loaded on first use."""
    key = (path, cpu_threads, workers)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError as exc:
                raise ProviderUnavailable(PROVIDER, "faster-whisper is not installed; "
                                          "install it with: pip install 'personae[voice]'",
                                          ) from exc
            model = _models[key] = WhisperModel(
                str(path), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
                num_workers=workers)
        return model


def confidence(segments: Sequence[Any]) -> float | None:
    """The mean token probability: each segment's exp(avg_logprob), weighted by its
    token count (a segment's avg_logprob is already the mean over its tokens)."""
    weights = [len(segment.tokens) for segment in segments]
    if not sum(weights):
        return None
    total = sum(w * math.exp(segment.avg_logprob) for w, segment in zip(weights, segments,
                                                                        strict=True))
    return total / sum(weights)


class WhisperRecogniser:
    """A :class:`~personae.providers.speech.SpeechRecogniser` over one Whisper model."""

    def __init__(self, name: str, model: str, data_dir: Path, threads: int,
                 cpu_threads: int = CPU_THREADS) -> None:
        check_installed(model)
        self.name = name
        self.model = model
        self._data_dir = data_dir
        self._threads = threads
        self._cpu_threads = cpu_threads
        self._loaded: Any = None
        speech_pool(threads)

    def languages(self) -> frozenset[str]:
        return BASE_LANGUAGES if self.model == BASE else frozenset({"en"})

    def load(self) -> Any:
        """The loaded model (assembling and loading it the first time); blocking."""
        if self._loaded is None:
            path = model_dir(self.model, self._data_dir)
            self._loaded = loaded_model(path, self._cpu_threads, self._threads)
        return self._loaded

    async def warm(self) -> None:
        """Load the model now (on the pool), so the first utterance does not wait."""
        await run_speech(self.load)

    async def transcribe(self, audio: AudioChunk, *, language: str | None = None,
                         prompt: str | None = None) -> Transcript:
        if audio.sample_rate != RECOGNITION_RATE or audio.channels != 1:
            raise ValueError(f"Whisper takes mono audio at {RECOGNITION_RATE} Hz, not "
                             f"{audio.channels} channel(s) at {audio.sample_rate} Hz")
        hint = self._language_hint(language)
        if not audio.pcm:
            return Transcript("", hint, None, 0.0, self.name, self.model)
        text, heard, score = await run_speech(self._decode, audio.pcm, hint, prompt)
        return Transcript(text, heard, score, audio.duration_ms, self.name, self.model)

    def _language_hint(self, language: str | None) -> str | None:
        """English for tiny.en; else the primary subtag if Whisper knows it (None:
        detect)."""
        if self.model != BASE:
            return "en"
        if not language:
            return None
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        primary = language.split("-", 1)[0].lower()
        return primary if primary in _LANGUAGE_CODES else None

    def _decode(self, pcm: bytes, language: str | None,
                prompt: str | None) -> tuple[str, str | None, float | None]:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        segments, info = self.load().transcribe(
            samples, language=language, beam_size=1, temperature=0.0,
            without_timestamps=True, vad_filter=False, condition_on_previous_text=False,
            initial_prompt=prompt or None)
        heard = list(segments)  # decoding happens while the generator is consumed
        text = " ".join(segment.text.strip() for segment in heard).strip()
        return text, info.language or language, confidence(heard)

    async def aclose(self) -> None:
        """Nothing to free: the loaded model is the process's, shared."""


def build_whisper(name: str, config: ProviderConfig | None,
                  settings: Settings) -> WhisperRecogniser:
    """Factory for the ``personae.speech_to_text`` group (``whisper``): the model named
    by the provider's ``model`` when it is a Whisper model, else ``settings.stt_model``."""
    wanted = config.model if config is not None and config.model in MODELS else None
    return WhisperRecogniser(name, wanted or settings.stt_model, settings.data_dir,
                             settings.voice_threads)
