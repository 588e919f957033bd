"""Which synthesiser and voice speak for a persona, and which recogniser hears its users.

The persona drives it: ``voice.provider`` names the synthesiser (and the recogniser
too, when that provider also recognises speech), then the configured default
(``settings.tts_provider``), then the best offline voice for the persona's language
and gender (gender first, then a neural voice over a formant one, then the exact
region). Languages match on their primary subtag (en-US ~ en-GB ~ en). A persona the
machine cannot voice or hear gets a plan saying so in ``warnings``; typed messages
still work, so nothing here fails. A persona nobody here can hear also gets
``unheard``: that problem alone, for a request that needs a recogniser to refuse with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import langcodes

from personae.config import Settings
from personae.errors import ProviderUnavailable
from personae.personas.language import language_name
from personae.personas.schema import PersonaDefinition
from personae.providers.speech import Voice, VoiceChoice
from personae.providers.speech_registry import BUILT_IN, SpeechProviders


@dataclass(frozen=True, slots=True)
class VoicePlan:
    """``synthesiser``/``recogniser`` are provider names (None: none can serve)."""

    synthesiser: str | None
    voice: VoiceChoice
    recogniser: str | None
    stt_language: str | None
    warnings: list[str] = field(default_factory=list)
    unheard: str | None = None  # why no recogniser serves (None when one does)


def primary(tag: str) -> str:
    """The primary language subtag, lower case: ``"en-US"`` -> ``"en"``."""
    return tag.split("-", 1)[0].split("_", 1)[0].lower()


def shown(tag: str) -> str:
    return f"{language_name(tag)} ({tag})"


def plan_voice(definition: PersonaDefinition, speech: SpeechProviders,
               settings: Settings) -> VoicePlan:
    """The voice plan for ``definition`` (cheap: the providers' voice lists are cached)."""
    warnings: list[str] = []
    synthesiser, voice_id = _synthesiser(definition, speech, settings, warnings)
    recogniser, unheard = _recogniser(definition, speech, settings)
    if unheard is not None:
        warnings.append(f"{unheard}; typed messages still work")
    choice = VoiceChoice(voice_id=voice_id if synthesiser else None,
                         speed=definition.voice.speed, language=definition.language)
    return VoicePlan(synthesiser, choice, recogniser,
                     primary(definition.language) if recogniser else None, warnings,
                     unheard)


def no_recogniser(language: str, why: str = "") -> str:
    """Why speech in ``language`` cannot be heard here, and how to change that."""
    return (f"no speech recogniser for {shown(language)} is installed{why}; configure a "
            "cloud STT provider (PERSONAE_STT_PROVIDER naming a configured provider of "
            "kind openai, or the persona's voice.provider)")


def hears(languages: frozenset[str] | None, language: str) -> bool:
    """Whether a recogniser handling ``languages`` (None: any) hears ``language``."""
    return languages is None or primary(language) in languages


def _synthesiser(definition: PersonaDefinition, speech: SpeechProviders, settings: Settings,
                 warnings: list[str]) -> tuple[str | None, str | None]:
    """The named provider that can speak, else the best local voice."""
    named = [(f"the persona's voice provider {definition.voice.provider!r}",
              definition.voice.provider),
             (f"the default voice provider {settings.tts_provider!r}", settings.tts_provider)]
    skipped: list[str] = []  # named providers that cannot speak, and why
    chosen: tuple[str | None, str | None] | None = None
    for label, name in named:
        if name is None:
            continue
        if not speech.speaks(name):
            skipped.append(_not_speaking(label, name, speech, settings))
            continue
        found = _on_provider(definition, speech, name, label, warnings)
        if found is not None:
            chosen = name, found.id if isinstance(found, Voice) else found or None
            break
    if chosen is None:
        chosen = _best_local(definition, speech, warnings)
    instead = _speaking_instead(chosen, settings)
    warnings[:0] = [f"{reason}; {instead}" for reason in skipped]
    return chosen


def _not_speaking(label: str, name: str, speech: SpeechProviders,
                  settings: Settings) -> str:
    """Why a named provider does not speak: not configured at all, or configured with
    a kind that has no synthesiser."""
    config = settings.providers.get(name)
    if config is None:
        return f"{label} is not configured (set PERSONAE_PROVIDERS; see README: Voice)"
    return (f"{label} does not synthesise speech (its kind {config.kind!r} has no "
            f"synthesiser; known: {', '.join(speech.names('tts'))})")


def _speaking_instead(chosen: tuple[str | None, str | None], settings: Settings) -> str:
    name, voice_id = chosen
    if name is None:
        return "no voice speaks for the persona"
    if name in BUILT_IN["tts"]:
        return f"speaking with the offline voice {name} {voice_id or ''}".rstrip()
    return f"speaking with the voice provider {name!r}"


def _on_provider(definition: PersonaDefinition, speech: SpeechProviders, name: str,
                 label: str, warnings: list[str]) -> Voice | str | None:
    """The voice on a named provider: the persona's ``voice_id`` when the provider
    offers it (a cloud provider offers any), else its best voice for the language.
    None: this provider cannot speak for the persona ("" keeps the provider's own)."""
    wanted = definition.voice.voice_id
    try:
        voices = speech.voices(name)
    except ProviderUnavailable as exc:
        warnings.append(f"{label} is not available ({exc.message}); using another voice")
        return None
    if voices is None:
        return wanted or ""
    if wanted is not None:
        offered = next((voice for voice in voices if voice.id == wanted), None)
        if offered is not None:
            return offered
        warnings.append(f"{label} has no voice {wanted!r}; choosing one of its voices")
    best = _best(voices, definition)
    if best is None:
        warnings.append(f"{label} has no voice for {shown(definition.language)}; "
                        "using another voice")
    return best


def _best_local(definition: PersonaDefinition, speech: SpeechProviders,
                warnings: list[str]) -> tuple[str | None, str | None]:
    voices: list[Voice] = []
    offered_by: dict[int, str] = {}  # which local provider offers each voice
    missing: list[str] = []
    for name in BUILT_IN["tts"]:
        try:
            offered = speech.voices(name) or ()
        except ProviderUnavailable as exc:
            missing.append(exc.message)
            continue
        voices.extend(offered)
        offered_by.update((id(voice), name) for voice in offered)
    best = _best(voices, definition)
    why = f" ({'; '.join(missing)})" if missing else ""
    if best is None:
        warnings.append(f"no offline voice for {shown(definition.language)} is installed"
                        f"{why}; configure a cloud speech provider (PERSONAE_TTS_PROVIDER, "
                        "or the persona's voice.provider); replies are still written")
        return None, None
    gender = _gender(definition)
    if gender is not None and best.gender != gender:
        warnings.append(f"no {gender} voice for {shown(definition.language)} is installed"
                        f"{why}; the {best.gender} voice {best.id} speaks")
    elif missing and best.quality != "neural":
        warnings.append(f"a better voice may be missing{why}; the {best.quality} voice "
                        f"{best.id} speaks")
    return offered_by[id(best)], best.id


def _best(voices: Sequence[Voice], definition: PersonaDefinition) -> Voice | None:
    """The voice for the persona's language: gender, then neural, then the exact tag,
    then the language's most likely region (``en`` -> ``en-us``), then the first."""
    language = primary(definition.language)
    exact = _tag(definition.language)
    likely = _likely(definition.language)
    gender = _gender(definition)
    fitting = [voice for voice in voices if primary(voice.language) == language]
    if not fitting:
        return None
    return max(fitting, key=lambda voice: (
        gender is not None and voice.gender == gender, voice.quality == "neural",
        _tag(voice.language) == exact, _tag(voice.language) == likely))


def _tag(language: str) -> str:
    return language.lower().replace("_", "-")


@lru_cache(maxsize=256)
def _likely(language: str) -> str:
    """The language with its most likely region: ``"en"`` -> ``"en-us"``."""
    try:
        found = langcodes.Language.get(language).maximize()
    except (LookupError, ValueError):
        return _tag(language)
    region = found.territory
    return _tag(f"{found.language}-{region}" if region else language)


def _gender(definition: PersonaDefinition) -> str | None:
    gender = (definition.gender or "").strip().lower()
    return gender if gender in ("female", "male") else None


def _recogniser(definition: PersonaDefinition, speech: SpeechProviders,
                settings: Settings) -> tuple[str | None, str | None]:
    """The first recogniser that handles the persona's language: its voice provider
    (if that recognises speech), then the configured default; else None and why."""
    candidates = [settings.stt_provider]
    provider = definition.voice.provider
    if provider is not None and speech.recognises(provider):
        candidates.insert(0, provider)
    missing: list[str] = []
    for name in dict.fromkeys(candidates):
        if not speech.recognises(name):
            missing.append(f"{name}: not a speech recogniser")
            continue
        try:
            languages = speech.recognised_languages(name)
        except ProviderUnavailable as exc:
            missing.append(exc.message)
            continue
        if hears(languages, definition.language):
            return name, None
    why = f" ({'; '.join(missing)})" if missing else ""
    return None, no_recogniser(definition.language, why)
