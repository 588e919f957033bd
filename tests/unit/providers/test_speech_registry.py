"""The speech registry: names per group, lazy cached building, one instance per local
kind, configured providers serving speech, clear errors, and the Runtime's field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderUnavailable
from personae.providers.fake import ScriptedRecogniser, ScriptedSynthesiser
from personae.providers.kinds import SPEECH_TO_TEXT, TEXT_TO_SPEECH, ProviderKinds
from personae.providers.openai_audio import OpenAIRecogniser, OpenAISynthesiser
from personae.providers.speech import AudioChunk, SpeechRecogniser, SpeechSynthesiser
from personae.providers.speech_registry import SpeechProviders
from personae.runtime import Runtime
from tests.conftest import sqlite_url_for

SILENCE = AudioChunk(b"\0\0" * 1600, 16_000)


class Built:
    """Factories that count what they built."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def recogniser(self, name: str, config: ProviderConfig, settings: Settings) -> Any:
        self.calls.append((name, config.kind))
        return ScriptedRecogniser([f"heard by {config.kind}"], name=name)

    def synthesiser(self, name: str, config: ProviderConfig, settings: Settings) -> Any:
        self.calls.append((name, config.kind))
        return ScriptedSynthesiser(name=name)


def kinds_for(built: Built) -> tuple[ProviderKinds[SpeechRecogniser],
                                     ProviderKinds[SpeechSynthesiser]]:
    stt: ProviderKinds[SpeechRecogniser] = ProviderKinds(SPEECH_TO_TEXT,
                                                         contract=SpeechRecogniser)
    tts: ProviderKinds[SpeechSynthesiser] = ProviderKinds(TEXT_TO_SPEECH,
                                                          contract=SpeechSynthesiser)
    stt.register("whisper", built.recogniser)
    for kind in ("piper", "espeak"):
        tts.register(kind, built.synthesiser)
    return stt, tts


def settings_with(**providers: dict[str, Any]) -> Settings:
    return Settings(providers={name: ProviderConfig(**config)
                               for name, config in providers.items()})


def test_kinds_check_the_contract_of_their_group() -> None:
    stt: ProviderKinds[SpeechRecogniser] = ProviderKinds(SPEECH_TO_TEXT,
                                                         contract=SpeechRecogniser)
    stt.register("talker", lambda name, config, settings: ScriptedSynthesiser(name=name))
    with pytest.raises(ProviderUnavailable, match="returned ScriptedSynthesiser, "
                                                  "not a SpeechRecogniser"):
        stt.build("talker", "talker", ProviderConfig(kind="talker"), Settings())
    stt.register("hearer", lambda name, config, settings: ScriptedRecogniser([], name=name))
    assert isinstance(stt.build("hearer", "h", ProviderConfig(kind="hearer"), Settings()),
                      ScriptedRecogniser)


def test_the_groups_declare_the_speech_kinds() -> None:
    assert {"whisper", "openai"} <= set(ProviderKinds(SPEECH_TO_TEXT,
                                                      contract=SpeechRecogniser).names())
    assert {"piper", "espeak", "openai"} <= set(ProviderKinds(
        TEXT_TO_SPEECH, contract=SpeechSynthesiser).names())


def test_names_per_group_take_configured_providers_whose_kind_has_a_factory() -> None:
    speech = SpeechProviders(settings_with(
        cloud={"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
        chat={"kind": "scripted"}))
    assert speech.names("stt") == ["cloud", "whisper"]
    assert speech.names("tts") == ["cloud", "espeak", "piper"]
    assert speech.names("vad") == ["silero"]
    assert speech.recognises("cloud") and speech.speaks("cloud")
    assert not speech.recognises("chat") and not speech.speaks("chat")
    assert not speech.recognises("piper") and speech.speaks("piper")


async def test_one_configured_openai_provider_serves_recognition_and_synthesis() -> None:
    speech = SpeechProviders(settings_with(cloud={"kind": "openai",
                                                  "base_url": "http://127.0.0.1:9/v1"}))
    assert isinstance(speech.instance("stt", "cloud"), OpenAIRecogniser)
    assert isinstance(speech.instance("tts", "cloud"), OpenAISynthesiser)
    assert speech.recogniser("cloud").name == "cloud"
    assert speech.synthesiser("cloud").voices() is None
    await speech.aclose()


async def test_building_is_lazy_cached_and_one_instance_serves_a_local_kind() -> None:
    built = Built()
    stt, tts = kinds_for(built)
    speech = SpeechProviders(settings_with(fast={"kind": "whisper"}),
                             recognisers=stt, synthesisers=tts)
    assert built.calls == []
    heard = await speech.recogniser().transcribe(SILENCE)  # the default: settings.stt_provider
    assert heard.text == "heard by whisper"
    assert speech.instance("stt", "fast") is speech.instance("stt", "whisper")
    speech.synthesiser("piper")
    speech.synthesiser("piper")
    assert built.calls == [("whisper", "whisper"), ("piper", "piper")]


async def test_unknown_names_are_refused_listing_the_known_ones() -> None:
    speech = SpeechProviders(settings_with(chat={"kind": "scripted"}))
    with pytest.raises(ProviderUnavailable, match="no such speech recogniser; known: whisper"):
        speech.recogniser("nope")
    with pytest.raises(ProviderUnavailable,
                       match="'scripted' has no speech synthesiser; known: espeak, piper"):
        speech.synthesiser("chat")


def test_a_local_kind_without_its_extra_names_the_install_command() -> None:
    def missing(name: str, config: ProviderConfig, settings: Settings) -> Any:
        raise ImportError("No module named 'onnxruntime'")

    tts: ProviderKinds[SpeechSynthesiser] = ProviderKinds(TEXT_TO_SPEECH,
                                                          contract=SpeechSynthesiser)
    tts.register("piper", missing)
    speech = SpeechProviders(Settings(), synthesisers=tts)
    with pytest.raises(ProviderUnavailable, match=r"pip install 'personae\[voice\]'"):
        speech.synthesiser("piper")
    with pytest.raises(ProviderUnavailable, match="onnxruntime"):
        speech.voices("piper")  # remembered, not rebuilt


async def test_fallbacks_are_the_configured_ones_valid_in_the_group() -> None:
    built = Built()
    stt, tts = kinds_for(built)
    speech = SpeechProviders(settings_with(
        cloud={"kind": "openai", "base_url": "http://127.0.0.1:9/v1",
               "fallback": ["chat", "whisper", "espeak", "missing"]},
        chat={"kind": "scripted"}), recognisers=stt, synthesisers=tts)
    stt.register("openai", lambda name, config, settings: ScriptedRecogniser(
        [ProviderUnavailable(name, "down", retryable=True)], name=name))
    tts.register("openai", built.synthesiser)
    recogniser = speech.recogniser("cloud")
    assert [each.name for each in recogniser.chain] == ["cloud", "whisper"]  # type: ignore[attr-defined]
    assert (await recogniser.transcribe(SILENCE)).text == "heard by whisper"
    synthesiser = speech.synthesiser("cloud")
    assert [each.name for each in synthesiser.chain] == ["cloud", "espeak"]  # type: ignore[attr-defined]


async def test_breakers_are_per_group_and_name_and_shared() -> None:
    speech = SpeechProviders(Settings())
    assert speech.breaker("stt", "whisper") is speech.breaker("stt", "whisper")
    assert speech.breaker("stt", "openai") is not speech.breaker("tts", "openai")


async def test_registered_providers_are_valid_and_closed_with_the_registry() -> None:
    speech = SpeechProviders(Settings())
    recogniser = ScriptedRecogniser(["hi"], name="mine")
    synthesiser = ScriptedSynthesiser(name="voice")
    speech.register_recogniser("mine", recogniser)
    speech.register_synthesiser("voice", synthesiser)
    assert speech.recognises("mine") and "voice" in speech.names("tts")
    assert (await speech.recogniser("mine").transcribe(SILENCE)).text == "hi"
    await speech.aclose()
    assert recogniser.closed and synthesiser.closed


async def test_the_runtime_holds_the_speech_providers_and_closes_them(tmp_path: Path) -> None:
    runtime = await Runtime.open(Settings(data_dir=tmp_path,
                                          database_url=sqlite_url_for(tmp_path)), watch=False)
    recogniser = ScriptedRecogniser(["hi"])
    try:
        assert isinstance(runtime.speech, SpeechProviders)
        runtime.speech.register_recogniser("scripted-stt", recogniser)
    finally:
        await runtime.close()
    assert recogniser.closed
