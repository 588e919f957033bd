"""Which provider answers a caller, built once per process and shared.

Providers hold connection pools (or a loaded model), so they are built lazily on
first use and cached. What builds one is its kind's factory (:mod:`.kinds`). Breakers
are per provider name and shared by every caller, so one persona's failures spare
the others a wait on a provider that is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from langcodes import Language

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderUnavailable
from personae.providers.base import LLM, GenerationSettings, LanguageAware, ModelChoice
from personae.providers.kinds import ProviderFactory, ProviderKinds, SharedFactory
from personae.providers.resilience import BreakerListener, CircuitBreaker, ResilientLLM

EMBEDDED = "embedded"
CLOSE_BOUND_SECONDS = 10.0


class ProviderRegistry:
    """Builds, caches and closes the configured providers; resolves model choices.

    A kind whose factory is :class:`~.kinds.SharedFactory` (``embedded``: one loaded
    model) is built once here and serves every name of that kind until ``aclose``.
    """

    def __init__(self, settings: Settings, kinds: ProviderKinds[LLM] | None = None, *,
                 breaker_listener: Callable[[str], BreakerListener] | None = None) -> None:
        self.settings = settings
        self.kinds = kinds if kinds is not None else ProviderKinds()
        self.breaker_listener = breaker_listener  # provider name -> its breaker's listener
        self._instances: dict[str, LLM] = {}
        self._shared: dict[str, LLM] = {}  # by kind
        self._breakers: dict[str, CircuitBreaker] = {}

    def names(self) -> list[str]:
        """Every name ``get`` accepts: configured, registered, and always ``embedded``."""
        return sorted({*self.settings.providers, *self._instances, EMBEDDED})

    def config(self, name: str) -> ProviderConfig:
        """The provider's configuration; ``embedded`` works unconfigured, with defaults."""
        config = self.settings.providers.get(name)
        if config is not None:
            return config
        if name == EMBEDDED or name in self._instances:
            # A local model's first token waits for a free slot, not for a remote that
            # may hang: the whole deadline applies to it.
            defaults = ProviderConfig(kind=EMBEDDED,
                                      context_window=self.settings.embedded_context_window)
            return defaults.model_copy(update={
                "first_token_timeout_seconds": defaults.timeout_seconds})
        raise ProviderUnavailable(
            name, f"no such provider; configured: {', '.join(self.names())}")

    def get(self, name: str) -> LLM:
        """The provider called ``name``, built on first use."""
        llm = self._instances.get(name)
        if llm is None:
            llm = self._build(name, self.config(name))
            self._instances[name] = llm
        return llm

    def register(self, name: str, llm: LLM) -> None:
        """Add or replace a provider instance (tests, plugins); the caller keeps ownership
        of any instance it replaces."""
        self._instances[name] = llm

    def register_kind(self, kind: str, factory: ProviderFactory) -> None:
        """Add or replace a kind here only; providers already built are kept."""
        self.kinds.register(kind, factory)

    def known_kinds(self) -> list[str]:
        return self.kinds.names()

    def breaker(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(self.settings.breaker_failures,
                                     self.settings.breaker_reset_seconds)
            if self.breaker_listener is not None:
                breaker.listener = self.breaker_listener(name)
            self._breakers[name] = breaker
        return breaker

    def breakers(self) -> dict[str, CircuitBreaker]:
        """The breakers made so far, by provider name (for health reports)."""
        return dict(self._breakers)

    def built(self) -> dict[str, LLM]:
        """The providers built or registered so far, by name; nothing is built here."""
        return dict(self._instances)

    def resolve(self, choice: ModelChoice | None) -> tuple[LLM, GenerationSettings]:
        """The chosen provider wrapped with its fallbacks, and the generation settings."""
        name = (choice.provider if choice else None) or self.settings.default_provider
        config = self.config(name)
        chain_names = [name, *(f for f in dict.fromkeys(config.fallback) if f != name)]
        chain = [self.get(each) for each in chain_names]
        breakers = {llm.name: self.breaker(each) for llm, each in zip(chain, chain_names,
                                                                        strict=True)}
        llm = ResilientLLM(chain, breakers, retries=config.max_retries,
                           timeout=config.timeout_seconds,
                           first_token_timeout=config.first_token_timeout_seconds)
        return llm, generation_settings(choice, config)

    def language_warnings(self, choice: ModelChoice | None, language: str) -> list[str]:
        """A warning when the chosen provider's model does not handle ``language`` well
        (only providers that know their languages can tell)."""
        name = (choice.provider if choice else None) or self.settings.default_provider
        llm = self.get(name)
        model = generation_settings(choice, self.config(name)).model
        known = llm.languages_for(model) if isinstance(llm, LanguageAware) else None
        if known is None or language.split("-", 1)[0].lower() in known:
            return []
        shown = model or getattr(llm, "model", None) or "default"
        return [f"the {name} model {shown} does not handle "
                f"{Language.get(language).display_name()} ({language}) well; configure "
                "an external provider (see README: Embedded models) for this persona"]

    async def aclose(self) -> None:
        """Close every provider built or registered here, each within a bound."""
        instances = list({id(llm): llm for llm in self._instances.values()}.values())
        self._instances.clear()
        self._shared.clear()
        await asyncio.gather(*(_close(llm) for llm in instances))

    def _build(self, name: str, config: ProviderConfig) -> LLM:
        kind = config.kind
        if not isinstance(self.kinds.factory(kind, name), SharedFactory):
            return self.kinds.build(kind, name, config, self.settings)
        llm = self._shared.get(kind)
        if llm is None:
            llm = self._shared[kind] = self.kinds.build(kind, name, config, self.settings)
        return llm


def generation_settings(choice: ModelChoice | None,
                        config: ProviderConfig) -> GenerationSettings:
    """The caller's choices win; the provider's configured model is the default."""
    if choice is None:
        return GenerationSettings(model=config.model)
    return GenerationSettings(model=choice.model or config.model,
                              temperature=choice.temperature,
                              max_tokens=choice.max_tokens,
                              top_p=choice.top_p)


async def _close(llm: LLM) -> None:
    try:
        async with asyncio.timeout(CLOSE_BOUND_SECONDS):
            await llm.aclose()
    except Exception:
        pass
