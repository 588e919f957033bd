"""Whole-clip helpers for one-shot voice: is there speech in it; speak a text, sentence
by sentence; which synthesiser offers a named voice.

The live pipeline works frame by frame (``endpoint``) and clause by clause
(``sentences``); a one-shot turn has the whole recording and the whole reply, so it
asks simpler questions of the same providers.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from personae.errors import ProviderError
from personae.providers.speech import (
    SAMPLE_WIDTH,
    AudioChunk,
    SpeechSynthesiser,
    Voice,
    VoiceActivityDetector,
    VoiceChoice,
)
from personae.providers.streams import aclose_stream
from personae.voice.sentences import SentenceSplitter

if TYPE_CHECKING:
    from personae.providers.speech_registry import SpeechProviders

SPEECH_PROBABILITY = 0.5
SPEECH_FRAMES = 3  # this many frames in a row (~100 ms for Silero) are speech
LOCAL_SYNTHESISERS = ("piper", "espeak")


def speech_found(detector: VoiceActivityDetector, audio: AudioChunk) -> bool:
    """Whether some ``SPEECH_FRAMES`` frames in a row of 16 kHz ``audio`` hold speech
    (CPU work: call it off the event loop)."""
    probability = detector.open()
    frame = detector.frame_samples * SAMPLE_WIDTH
    run = 0
    for start in range(0, len(audio.pcm) - frame + 1, frame):
        run = run + 1 if probability(audio.pcm[start:start + frame]) >= SPEECH_PROBABILITY \
            else 0
        if run >= SPEECH_FRAMES:
            return True
    return False


def _unspoken(char: str) -> bool:
    category = unicodedata.category(char)
    return category == "Cf" or (category == "Cc" and char not in "\n\t")


def sanitised(text: str) -> str:
    """``text`` without control and format characters (NUL, escapes, zero-width and
    direction marks), which a synthesiser would otherwise spell out; a control that
    separates (a carriage return, a form feed) becomes a space."""
    if text.isprintable():
        return text
    return "".join((" " if char.isspace() else "") if _unspoken(char) else char
                   for char in text)


def sentences(text: str) -> list[str]:
    """``text`` in speakable pieces (sanitised, markdown taken out), as the live
    pipeline cuts a reply, so a long reply never reaches a synthesiser in one piece."""
    splitter = SentenceSplitter()
    clean = sanitised(text)
    return [*splitter.feed(clean), *splitter.flush()]


async def speak_sentences(synthesiser: SpeechSynthesiser, text: str,
                          voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
    """``text`` spoken one piece at a time: each piece's audio, mono at the rate of the
    first audio, as soon as the synthesiser has said it. Closing this stream closes the
    synthesiser's."""
    from personae.voice.audio import resample

    rate: int | None = None
    for sentence in sentences(text):
        stream = synthesiser.synthesize(sentence, voice=voice)
        pieces: list[bytes] = []
        try:
            async for chunk in stream:
                rate = rate or chunk.sample_rate
                pieces.append(resample(chunk, rate).pcm)
        finally:
            await aclose_stream(stream)
        if pieces and rate is not None:
            yield AudioChunk(b"".join(pieces), rate)


async def speak_text(synthesiser: SpeechSynthesiser, text: str,
                     voice: VoiceChoice) -> AudioChunk:
    """All of ``text`` spoken, piece by piece, as one mono chunk."""
    pieces = [piece async for piece in speak_sentences(synthesiser, text, voice)]
    rate = pieces[0].sample_rate if pieces else 16_000
    return AudioChunk(b"".join(piece.pcm for piece in pieces), rate)


def _voices(speech: SpeechProviders, name: str) -> list[Voice]:
    try:
        return list(speech.voices(name) or [])
    except ProviderError:  # not installed here (the voice extra, espeak-ng)
        return []


def local_voice(speech: SpeechProviders, voice_id: str) -> tuple[str, Voice] | None:
    """The offline synthesiser offering ``voice_id`` (``en_US-joe-medium``, ``hi``)."""
    for name in LOCAL_SYNTHESISERS:
        for voice in _voices(speech, name):
            if voice.id == voice_id:
                return name, voice
    return None


def default_voice(speech: SpeechProviders) -> tuple[str, Voice]:
    """The voice for speech nobody chose a voice for: the first English local voice
    (Piper's, else espeak-ng's)."""
    for name in LOCAL_SYNTHESISERS:
        voices = _voices(speech, name)
        english = [v for v in voices if v.language.lower().startswith("en")]
        if english or voices:
            return name, (english or voices)[0]
    raise ProviderError("voice", "no offline voice is installed: pip install "
                        "'personae[voice]' and the espeak-ng program")
