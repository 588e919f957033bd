"""Formant speech in about a hundred languages (Hindi among them): the espeak-ng program.

Each clause is one ``espeak-ng --stdout`` process (text on stdin, a 22,050 Hz WAV on
stdout), killed if the stream is closed early or the clause takes too long. The
program is GPL-3 and is only ever run as a separate process. Its voices are read
once from ``espeak-ng --voices``; each language is also offered as a female
(``<voice>+f3``) and a male (``<voice>+m3``) variant, so a persona's gender can be
matched (espeak-ng's own voices are all listed as male).
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator, Sequence

from langcodes import standardize_tag

from personae.config import ProviderConfig, Settings
from personae.errors import InvalidInput, ProviderError
from personae.providers.espeak_program import run_blocking, run_program, split_clauses
from personae.providers.speech import SAMPLE_WIDTH, AudioChunk, Gender, Voice, VoiceChoice

NORMAL_WPM = 175
MIN_WPM, MAX_WPM = 80, 450
DEFAULT_VOICE = "en-us"
DEFAULT_TIMEOUT = 30.0
_GENDERS: dict[str, Gender] = {"M": "male", "F": "female"}
_VARIANTS: tuple[tuple[str, Gender], ...] = (("+f3", "female"), ("+m3", "male"))


def bcp47(code: str) -> str:
    """An espeak-ng language code as a BCP 47 tag ("en-us" -> "en-US")."""
    try:
        return str(standardize_tag(code))
    except ValueError:
        return code


def parse_voices(listing: str, provider: str) -> list[Voice]:
    """``espeak-ng --voices`` as voices, mbrola ones (``mb/``) skipped, each language
    followed by its female and male variants."""
    voices: dict[str, Voice] = {}
    for line in listing.splitlines()[1:]:
        columns = line.split()
        if len(columns) < 5 or columns[4].startswith("mb/"):
            continue
        code, gender = columns[1], _GENDERS.get(columns[2].rsplit("/", 1)[-1], "neutral")
        language = bcp47(code)
        voices.setdefault(code, Voice(code, language, gender, "formant", provider))
        for suffix, variant_gender in _VARIANTS:
            voices.setdefault(code + suffix, Voice(code + suffix, language, variant_gender,
                                                   "formant", provider))
    return list(voices.values())


def words_per_minute(speed: float) -> int:
    return int(min(max(round(NORMAL_WPM * speed), MIN_WPM), MAX_WPM))


def wav_pcm(data: bytes, provider: str) -> AudioChunk:
    """espeak-ng's streamed WAV (its header's sizes are placeholders) as PCM16 mono."""
    try:
        with wave.open(io.BytesIO(data)) as reader:
            if reader.getsampwidth() != SAMPLE_WIDTH or reader.getnchannels() != 1:
                raise ProviderError(provider, "espeak-ng wrote audio that is not 16-bit mono")
            rate = reader.getframerate()
            pcm = b"".join(iter(lambda: reader.readframes(65536), b""))
    except (wave.Error, EOFError) as exc:
        raise ProviderError(provider, f"espeak-ng wrote no readable WAV: {exc}") from exc
    return AudioChunk(pcm[:len(pcm) - len(pcm) % SAMPLE_WIDTH], rate)


class EspeakSynthesiser:
    """A :class:`~personae.providers.speech.SpeechSynthesiser` over the espeak-ng program."""

    def __init__(self, name: str = "espeak", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.name = name
        self.timeout = timeout
        self._voices = parse_voices(run_blocking(name, ["--voices"]), name)
        self._by_id = {voice.id: voice for voice in self._voices}

    def voices(self) -> Sequence[Voice]:
        return self._voices

    def resolve(self, voice: VoiceChoice) -> str:
        """The espeak-ng voice to use: the id asked for, else the first for the language,
        else ``en-us``."""
        if voice.voice_id is not None:
            if voice.voice_id not in self._by_id:
                raise InvalidInput(f"{self.name}: unknown voice {voice.voice_id!r}; see "
                                   "`espeak-ng --voices` (add +f3 or +m3 for a female or "
                                   "male variant)", {"provider": self.name,
                                                     "voice_id": voice.voice_id})
            return voice.voice_id
        if voice.language:
            wanted = voice.language.lower()
            for candidate in (wanted, wanted.split("-", 1)[0]):
                for each in self._voices:
                    if each.language.lower() == candidate:
                        return each.id
        return DEFAULT_VOICE

    async def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        """One espeak-ng run per clause, each clause's audio yielded when it is ready."""
        args = ["--stdout", "-v", self.resolve(voice), "-s", str(words_per_minute(voice.speed))]
        for clause in split_clauses(text):
            data = await run_program(self.name, args, clause.text + clause.punctuation,
                                     self.timeout)
            chunk = wav_pcm(data, self.name)
            if chunk.pcm:
                yield chunk

    async def aclose(self) -> None:
        """Nothing held: each clause's process has ended or been killed."""


def build_espeak(name: str, config: ProviderConfig | None,
                 settings: Settings) -> EspeakSynthesiser:
    """Factory for the ``personae.text_to_speech`` group (``espeak``)."""
    del settings
    timeout = config.timeout_seconds if config is not None else DEFAULT_TIMEOUT
    return EspeakSynthesiser(name, min(timeout, DEFAULT_TIMEOUT))
