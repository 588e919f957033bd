"""The offline speech stack on real models and real audio: Silero VAD, Whisper, Piper and
espeak-ng. Each model is loaded once for the module (the providers share one loaded
copy per process); clips are short (1-4 s)."""

from __future__ import annotations

import asyncio
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from personae.config import Settings
from personae.errors import InvalidInput, ProviderTimeout, ProviderUnavailable
from personae.providers import espeak_program, whisper_models
from personae.providers.espeak_tts import EspeakSynthesiser
from personae.providers.piper_tts import VOICE_ID, PiperSynthesiser
from personae.providers.silero_vad import FRAME_SAMPLES, SileroDetector
from personae.providers.speech import AudioChunk, VoiceChoice
from personae.providers.speech_threads import speech_pool
from personae.providers.whisper_stt import WhisperRecogniser
from tests.support.speech import (
    concat,
    espeak_audio,
    noise,
    piper_audio,
    resample,
    rms,
    silence,
    tone,
    word_error_rate,
)

SENTENCES = "Please tell me about my marriage prospects this year. I was born in March."
QUESTION = "What time does the library open on Sunday morning?"


@pytest.fixture(scope="module")
def vad() -> SileroDetector:
    return SileroDetector()


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> WhisperRecogniser:
    recogniser = WhisperRecogniser("whisper", "tiny.en", tmp_path_factory.mktemp("data"), 2)
    recogniser.load()
    return recogniser


@pytest.fixture(scope="module")
def piper() -> PiperSynthesiser:
    return PiperSynthesiser("piper")


@pytest.fixture(scope="module")
def espeak() -> EspeakSynthesiser:
    return EspeakSynthesiser("espeak")


def probabilities(vad: SileroDetector, audio: AudioChunk) -> list[float]:
    stream = vad.open()
    step = FRAME_SAMPLES * 2
    return [stream(audio.pcm[i:i + step]) for i in range(0, len(audio.pcm) - step + 1, step)]


async def spoken(synthesiser: PiperSynthesiser | EspeakSynthesiser, text: str,
                 voice: VoiceChoice | None = None) -> AudioChunk:
    chunks = [c async for c in synthesiser.synthesize(text, voice=voice or VoiceChoice())]
    return AudioChunk(b"".join(c.pcm for c in chunks), chunks[0].sample_rate)


# -- voice activity ------------------------------------------------------------------

@pytest.mark.parametrize("make", [espeak_audio, piper_audio], ids=["espeak", "piper"])
def test_vad_finds_speech_between_silences(vad: SileroDetector, make: object) -> None:
    speech = make(QUESTION)  # type: ignore[operator]
    probs = probabilities(vad, concat(silence(500), speech, silence(500)))
    lead = 500 // 32 - 1
    assert max(probs[:lead]) < 0.3  # the leading silence is not speech
    assert sum(p > 0.5 for p in probs[lead:-lead]) > 0.6 * (len(probs) - 2 * lead)
    assert max(probs[-5:]) < 0.3  # and it ends when the speech does


@pytest.mark.parametrize("audio", [noise(2000, 0.1), noise(2000, 0.3, seed=1), tone(2000)],
                         ids=["noise", "loud-noise", "tone-440"])
def test_vad_rejects_noise_and_a_tone(vad: SileroDetector, audio: AudioChunk) -> None:
    assert max(probabilities(vad, audio)) < 0.5


def test_vad_streams_keep_their_own_state(vad: SileroDetector) -> None:
    speech, quiet = espeak_audio(QUESTION), concat(silence(300), noise(1000, 0.05))
    alone = probabilities(vad, speech)
    first, second = vad.open(), vad.open()
    step = FRAME_SAMPLES * 2
    interleaved = []
    for i in range(0, len(speech.pcm) - step + 1, step):
        interleaved.append(first(speech.pcm[i:i + step]))
        if i + step <= len(quiet.pcm):
            second(quiet.pcm[i:i + step])
    assert interleaved == pytest.approx(alone, abs=1e-5)


def test_vad_refuses_a_frame_of_the_wrong_size(vad: SileroDetector) -> None:
    with pytest.raises(ValueError, match="512 PCM16 samples"):
        vad.open()(bytes(100))


# -- recognition ---------------------------------------------------------------------

@pytest.mark.parametrize("make", [espeak_audio, piper_audio], ids=["espeak", "piper"])
async def test_whisper_transcribes_synthesised_sentences(whisper: WhisperRecogniser,
                                                         make: object) -> None:
    heard = await whisper.transcribe(make(SENTENCES), language="en-US")  # type: ignore[operator]
    assert word_error_rate(SENTENCES, heard.text) <= 0.2, heard.text
    assert {"marriage", "year", "march"} <= set(heard.text.lower().replace(".", " ")
                                                 .replace(",", " ").split())
    assert heard.language == "en" and heard.provider == "whisper" and heard.model == "tiny.en"
    assert heard.confidence is not None and 0.3 < heard.confidence <= 1.0
    assert heard.audio_ms > 2000


async def test_whisper_refuses_audio_not_at_16_khz_mono(whisper: WhisperRecogniser) -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        await whisper.transcribe(espeak_audio("hello", rate=22050))
    with pytest.raises(ValueError, match="mono"):
        await whisper.transcribe(AudioChunk(bytes(6400), 16000, channels=2))


def test_whisper_models_load_once_per_process(whisper: WhisperRecogniser,
                                              tmp_path: Path) -> None:
    other = WhisperRecogniser("other", "tiny.en", tmp_path, 2)
    assert other.load() is whisper.load()


async def test_whisper_hears_nothing_in_empty_audio(whisper: WhisperRecogniser) -> None:
    heard = await whisper.transcribe(AudioChunk(b"", 16000))
    assert heard.text == "" and heard.confidence is None


async def test_three_transcriptions_at_once_stay_within_the_pool(
        whisper: WhisperRecogniser) -> None:
    pool = speech_pool()
    pool.reset_peak()
    clips = [espeak_audio(text) for text in ("Good morning.", "Thank you very much.",
                                              "See you tomorrow.")]
    heard = await asyncio.gather(*(whisper.transcribe(clip) for clip in clips))
    assert [word_error_rate(ref, h.text) for ref, h in
            zip(("Good morning.", "Thank you very much.", "See you tomorrow."), heard,
                strict=True)] == [0.0, 0.0, 0.0]
    assert 1 <= pool.peak <= pool.threads == Settings().voice_threads


def test_whisper_base_missing_a_part_names_the_extra(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = whisper_models.package_dir
    monkeypatch.setattr(whisper_models, "package_dir", lambda module: None
                        if module.endswith("part2") else real(module))
    with pytest.raises(ProviderUnavailable, match=r"pip install 'personae\[voice-base\]'"):
        whisper_models.model_dir("base", tmp_path)


async def test_whisper_base_is_assembled_once_verified_and_transcribes(
        tmp_path: Path) -> None:
    target = whisper_models.assembled_base(tmp_path)
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith(".")) == [
        "config.json", "model.bin", "model.bin.lock", "model.bin.sha256", "tokenizer.json",
        "vocabulary.txt"]
    made = (target / "model.bin").stat().st_mtime_ns
    assert whisper_models.assembled_base(tmp_path) == target  # trusted: not rebuilt
    assert (target / "model.bin").stat().st_mtime_ns == made
    recogniser = WhisperRecogniser("whisper", "base", tmp_path, 2)
    assert "hi" not in recogniser.languages() and "en" in recogniser.languages()
    heard = await recogniser.transcribe(piper_audio(QUESTION), language="en")
    assert word_error_rate(QUESTION, heard.text) <= 0.2, heard.text


# -- synthesis -----------------------------------------------------------------------

async def test_piper_speech_is_recognised_back(piper: PiperSynthesiser,
                                               whisper: WhisperRecogniser) -> None:
    text = "Hello, my name is Joe. I can read the news to you!"
    audio = await spoken(piper, text)
    assert audio.sample_rate == 22050
    heard = await whisper.transcribe(resample(audio))
    assert word_error_rate(text, heard.text) <= 0.2, heard.text
    assert {"joe", "news"} <= set(heard.text.lower().replace(".", " ").replace("!", " ").split())


async def test_piper_yields_clause_by_clause_and_stops_when_closed(
        piper: PiperSynthesiser, monkeypatch: pytest.MonkeyPatch) -> None:
    inferred: list[int] = []
    real = piper._infer
    monkeypatch.setattr(piper, "_infer", lambda ids, scale: inferred.append(1) or real(ids,
                                                                                    scale))
    stream = piper.synthesize("One. Two, three. Four! Five? Six.", voice=VoiceChoice())
    first = await anext(stream)
    assert 100 < first.duration_ms < 1500  # the first clause alone: "One."
    await stream.aclose()  # type: ignore[attr-defined]
    assert len(inferred) == 1


async def test_piper_survives_characters_it_has_no_phonemes_for(
        piper: PiperSynthesiser) -> None:
    audio = await spoken(piper, "Café ☃ 日本 — naïve, «quoted» text.")
    assert audio.duration_ms > 300 and rms(audio) > 0.01


async def test_unknown_voice_ids_are_a_clear_error(piper: PiperSynthesiser,
                                                   espeak: EspeakSynthesiser) -> None:
    with pytest.raises(InvalidInput, match=f"unknown voice 'nova'.*{VOICE_ID}"):
        await spoken(piper, "hello", VoiceChoice("nova"))
    with pytest.raises(InvalidInput, match="unknown voice 'klingon'"):
        await spoken(espeak, "hello", VoiceChoice("klingon"))


def test_piper_offers_the_joe_voice(piper: PiperSynthesiser) -> None:
    assert [(v.id, v.language, v.gender, v.quality) for v in piper.voices()] == [
        ("en_US-joe-medium", "en-US", "male", "neural")]


async def test_espeak_speaks_hindi_with_plausible_duration(espeak: EspeakSynthesiser) -> None:
    audio = await spoken(espeak, "नमस्ते", VoiceChoice(language="hi"))
    assert audio.sample_rate == 22050
    assert 300 < audio.duration_ms < 3000 and rms(audio) > 0.01
    female = await spoken(espeak, "नमस्ते", VoiceChoice("hi+f3"))
    assert female.pcm != audio.pcm


async def test_espeak_speed_changes_the_duration(espeak: EspeakSynthesiser) -> None:
    normal = await spoken(espeak, QUESTION, VoiceChoice("en-us"))
    fast = await spoken(espeak, QUESTION, VoiceChoice("en-us", speed=2.0))
    assert fast.duration_ms < 0.7 * normal.duration_ms


async def test_espeak_speech_is_recognised_back(espeak: EspeakSynthesiser,
                                                whisper: WhisperRecogniser) -> None:
    audio = await spoken(espeak, QUESTION, VoiceChoice("en-us+f3"))
    heard = await whisper.transcribe(resample(audio))
    assert word_error_rate(QUESTION, heard.text) <= 0.2, heard.text


def _espeak_children() -> list[str]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and "espeak" in stat.read_text():
            children.append(stat.parent.name)
    return children


async def test_espeak_closed_early_kills_its_process(
        espeak: EspeakSynthesiser, monkeypatch: pytest.MonkeyPatch) -> None:
    started = asyncio.Event()
    real = asyncio.create_subprocess_exec

    async def spawn(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await real(*args, **kwargs)
        started.set()
        return process

    monkeypatch.setattr(espeak_program.asyncio, "create_subprocess_exec", spawn)
    stream = espeak.synthesize(" ".join([QUESTION.rstrip("?")] * 40), voice=VoiceChoice())
    task = asyncio.ensure_future(anext(stream))
    await started.wait()
    assert len(_espeak_children()) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _espeak_children() == []


async def test_espeak_past_its_timeout_is_a_provider_timeout() -> None:
    slow = EspeakSynthesiser("espeak", timeout=0.001)
    with pytest.raises(ProviderTimeout, match="espeak-ng took longer"):
        await spoken(slow, " ".join([QUESTION] * 40))
    assert _espeak_children() == []


def test_a_missing_espeak_program_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(espeak_program.shutil, "which", lambda name: None)
    for build in (EspeakSynthesiser, PiperSynthesiser):
        with pytest.raises(ProviderUnavailable, match=r"apt-get install espeak-ng.*brew"):
            build("x")


@pytest.mark.parametrize(("group", "kind", "made"), [
    ("personae.voice_activity", "silero", SileroDetector),
    ("personae.speech_to_text", "whisper", WhisperRecogniser),
    ("personae.text_to_speech", "piper", PiperSynthesiser),
    ("personae.text_to_speech", "espeak", EspeakSynthesiser),
])
def test_the_factories_are_declared_entry_points(group: str, kind: str, made: type,
                                                 tmp_path: Path) -> None:
    (entry,) = [e for e in entry_points(group=group) if e.name == kind]
    built = entry.load()(kind, None, Settings(data_dir=tmp_path))
    assert isinstance(built, made) and built.name == kind
