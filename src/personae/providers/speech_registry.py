"""Which speech provider hears, speaks or detects speech, built once per process.

Speech works like language models (:mod:`.registry`): a provider is a name, its kind
is a factory in an entry-point group (``personae.speech_to_text``,
``personae.text_to_speech``, ``personae.voice_activity``), and callers get it wrapped
in the same resilience (:mod:`.speech_resilience`) with its configured fallbacks.
The local kinds need no configuration (``whisper``, ``piper``, ``espeak``,
``silero``); a configured provider (``{"openai": {"kind": "openai", ...}}``) serves
speech too when its kind has a factory in the group, so one configuration serves
chat, recognition and synthesis.

The local kinds hold a loaded model: one instance per kind serves every name of that
kind. Building is lazy, so a process that never speaks never loads a model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, cast

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderUnavailable
from personae.providers.kinds import (
    SPEECH_TO_TEXT,
    TEXT_TO_SPEECH,
    VOICE_ACTIVITY,
    ProviderKinds,
    SharedFactory,
)
from personae.providers.resilience import BreakerListener, CircuitBreaker
from personae.providers.speech import (
    SpeechRecogniser,
    SpeechSynthesiser,
    Voice,
    VoiceActivityDetector,
)
from personae.providers.speech_resilience import ResilientRecogniser, ResilientSynthesiser

SpeechGroup = Literal["stt", "tts", "vad"]
BUILT_IN: dict[SpeechGroup, tuple[str, ...]] = {
    "stt": ("whisper",), "tts": ("piper", "espeak"), "vad": ("silero",)}
LOCAL_KINDS = frozenset({"whisper", "piper", "espeak", "silero"})
SHOWN: dict[SpeechGroup, str] = {
    "stt": "speech recogniser", "tts": "speech synthesiser", "vad": "voice activity detector"}
VOICE_EXTRA_HINT = "pip install 'personae[voice]'"
CLOSE_BOUND_SECONDS = 10.0
T = TypeVar("T")


class SpeechProviders:
    """Builds, caches, wraps and closes the speech providers of one process."""

    def __init__(self, settings: Settings, *,
                 recognisers: ProviderKinds[SpeechRecogniser] | None = None,
                 synthesisers: ProviderKinds[SpeechSynthesiser] | None = None,
                 detectors: ProviderKinds[VoiceActivityDetector] | None = None,
                 breaker_listener: Callable[[str], BreakerListener] | None = None) -> None:
        self.settings = settings
        self.breaker_listener = breaker_listener  # "stt:name" -> its breaker's listener
        self.kinds: dict[SpeechGroup, ProviderKinds[Any]] = {
            "stt": recognisers or ProviderKinds(SPEECH_TO_TEXT, contract=SpeechRecogniser),
            "tts": synthesisers or ProviderKinds(TEXT_TO_SPEECH, contract=SpeechSynthesiser),
            "vad": detectors or ProviderKinds(VOICE_ACTIVITY, contract=VoiceActivityDetector),
        }
        self._instances: dict[tuple[SpeechGroup, str], Any] = {}
        self._shared: dict[tuple[SpeechGroup, str], Any] = {}  # by kind
        self._breakers: dict[tuple[SpeechGroup, str], CircuitBreaker] = {}
        self._probes: dict[tuple[str, str], Any] = {}  # what a provider offers, or why not

    # -- what exists ---------------------------------------------------------------

    def names(self, group: SpeechGroup) -> list[str]:
        """Every name valid in ``group``: built in, registered, or configured with a kind
        that has a factory there."""
        configured = [name for name in self.settings.providers if self.valid(group, name)]
        registered = [name for (each, name) in self._instances if each == group]
        return sorted({*BUILT_IN[group], *configured, *registered})

    def valid(self, group: SpeechGroup, name: str) -> bool:
        if (group, name) in self._instances:
            return True
        config = self.settings.providers.get(name)
        if config is None:
            return name in BUILT_IN[group]
        return config.kind in self.kinds[group].names()

    def recognises(self, name: str) -> bool:
        return self.valid("stt", name)

    def speaks(self, name: str) -> bool:
        return self.valid("tts", name)

    def config(self, group: SpeechGroup, name: str) -> ProviderConfig:
        """The configuration of ``name``; the built-in names work unconfigured."""
        config = self.settings.providers.get(name)
        if config is not None and self.valid(group, name):
            return config
        if name in BUILT_IN[group] or (group, name) in self._instances:
            defaults = ProviderConfig(kind=name)
            # A local model waits for a free thread, not for a remote that may hang.
            return defaults.model_copy(update={
                "first_token_timeout_seconds": defaults.timeout_seconds})
        known = ", ".join(self.names(group))
        reason = (f"provider of kind {config.kind!r} has no {SHOWN[group]}"
                  if config is not None else f"no such {SHOWN[group]}")
        raise ProviderUnavailable(name, f"{reason}; known: {known}")

    # -- what callers get ----------------------------------------------------------

    def recogniser(self, name: str | None = None) -> SpeechRecogniser:
        """``name`` (default ``settings.stt_provider``) with its fallbacks, resilient."""
        name = name or self.settings.stt_provider
        config = self.config("stt", name)
        chain = self._chain("stt", name, config)
        return ResilientRecogniser([self.instance("stt", each) for each in chain],
                                   self._breakers_for("stt", chain),
                                   retries=config.max_retries, timeout=config.timeout_seconds)

    def synthesiser(self, name: str) -> SpeechSynthesiser:
        """``name`` with its fallbacks, resilient."""
        config = self.config("tts", name)
        chain = self._chain("tts", name, config)
        return ResilientSynthesiser([self.instance("tts", each) for each in chain],
                                    self._breakers_for("tts", chain),
                                    retries=config.max_retries,
                                    timeout=config.timeout_seconds,
                                    first_chunk_timeout=config.first_token_timeout_seconds)

    def detector(self, name: str = "silero") -> VoiceActivityDetector:
        """A local detector: it runs inline on every frame, so it is not wrapped."""
        return cast(VoiceActivityDetector, self.instance("vad", name))

    def instance(self, group: SpeechGroup, name: str) -> Any:
        """The bare provider called ``name`` in ``group``, built on first use."""
        found = self._instances.get((group, name))
        if found is None:
            found = self._build(group, name, self.config(group, name))
            self._instances[(group, name)] = found
        return found

    def voices(self, name: str) -> Sequence[Voice] | None:
        """The voices synthesiser ``name`` offers (None: any its service knows); a
        provider that cannot be built raises ProviderUnavailable. Both are remembered,
        so choosing a voice per turn costs nothing."""
        return cast(Sequence[Voice] | None,
                    self._probe("voices", name, lambda: self.instance("tts", name).voices()))

    def recognised_languages(self, name: str) -> frozenset[str] | None:
        """What recogniser ``name`` (alone, not its fallbacks) handles; None: any."""
        return cast(frozenset[str] | None, self._probe(
            "languages", name, lambda: self.instance("stt", name).languages()))

    def breaker(self, group: SpeechGroup, name: str) -> CircuitBreaker:
        """One breaker per provider name and group, shared by every caller."""
        breaker = self._breakers.get((group, name))
        if breaker is None:
            breaker = CircuitBreaker(self.settings.breaker_failures,
                                     self.settings.breaker_reset_seconds)
            if self.breaker_listener is not None:
                breaker.listener = self.breaker_listener(f"{group}:{name}")
            self._breakers[(group, name)] = breaker
        return breaker

    def breakers(self) -> dict[str, CircuitBreaker]:
        """The breakers made so far, as ``group:name`` (for health reports)."""
        return {f"{group}:{name}": breaker for (group, name), breaker in self._breakers.items()}

    def built(self) -> list[tuple[SpeechGroup, str, Any]]:
        """The providers built or registered so far; nothing is built here."""
        return [(group, name, each) for (group, name), each in self._instances.items()]

    # -- tests and plugins ---------------------------------------------------------

    def register_recogniser(self, name: str, recogniser: SpeechRecogniser) -> None:
        self._instances[("stt", name)] = recogniser
        self._probes.pop(("languages", name), None)

    def register_synthesiser(self, name: str, synthesiser: SpeechSynthesiser) -> None:
        self._instances[("tts", name)] = synthesiser
        self._probes.pop(("voices", name), None)

    def register_detector(self, name: str, detector: VoiceActivityDetector) -> None:
        self._instances[("vad", name)] = detector

    async def aclose(self) -> None:
        """Close every provider built or registered here, each within a bound."""
        instances = list({id(each): each for each in self._instances.values()}.values())
        self._instances.clear()
        self._shared.clear()
        self._probes.clear()
        await asyncio.gather(*(_close(each) for each in instances))

    # -- building ------------------------------------------------------------------

    def _probe(self, what: str, name: str, ask: Callable[[], T]) -> T:
        key = (what, name)
        if key not in self._probes:
            try:
                self._probes[key] = ask()
            except ProviderUnavailable as exc:
                self._probes[key] = exc
        found = self._probes[key]
        if isinstance(found, ProviderUnavailable):
            raise found
        return cast(T, found)

    def _chain(self, group: SpeechGroup, name: str, config: ProviderConfig) -> list[str]:
        """``name`` then its configured fallbacks that are valid in ``group``."""
        fallbacks = [each for each in dict.fromkeys(config.fallback)
                     if each != name and self.valid(group, each)]
        return [name, *fallbacks]

    def _breakers_for(self, group: SpeechGroup, chain: list[str]) -> dict[str, CircuitBreaker]:
        return {self.instance(group, each).name: self.breaker(group, each) for each in chain}

    def _build(self, group: SpeechGroup, name: str, config: ProviderConfig) -> Any:
        kind = config.kind
        kinds = self.kinds[group]
        try:
            factory = kinds.factory(kind, name)
            if kind not in LOCAL_KINDS and not isinstance(factory, SharedFactory):
                return kinds.build(kind, name, config, self.settings)
            built = self._shared.get((group, kind))
            if built is None:
                built = self._shared[(group, kind)] = kinds.build(kind, name, config,
                                                                   self.settings)
            return built
        except ProviderUnavailable as exc:
            if kind in LOCAL_KINDS and _caused_by_import(exc):
                raise ProviderUnavailable(name, f"the {kind} {SHOWN[group]} needs the voice "
                                          f"extra: {VOICE_EXTRA_HINT} ({exc.message})"
                                          ) from exc
            raise


def _caused_by_import(exc: BaseException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, ImportError)


async def _close(provider: Any) -> None:
    try:
        async with asyncio.timeout(CLOSE_BOUND_SECONDS):
            await provider.aclose()
    except Exception:
        pass
