"""Which provider answers a persona, built once per process and shared.

Providers hold connection pools (or a loaded model), so they are built lazily on
first use and cached. Breakers are per provider name and shared by every persona,
so one persona's failures spare the others a wait on a provider that is down.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderUnavailable
from personae.providers.base import LLM, GenerationSettings
from personae.providers.resilience import CircuitBreaker, ResilientLLM

if TYPE_CHECKING:
    from personae.personas.schema import ModelSettings

EMBEDDED = "embedded"
CLOSE_BOUND_SECONDS = 10.0


class ProviderRegistry:
    """Builds, caches and closes the configured providers; resolves persona settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instances: dict[str, LLM] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._embedded: LLM | None = None

    def names(self) -> list[str]:
        """Every name ``get`` accepts: configured, registered, and always ``embedded``."""
        return sorted({*self.settings.providers, *self._instances, EMBEDDED})

    def config(self, name: str) -> ProviderConfig:
        """The provider's configuration; ``embedded`` works unconfigured, with defaults."""
        config = self.settings.providers.get(name)
        if config is not None:
            return config
        if name == EMBEDDED or name in self._instances:
            return ProviderConfig(kind="embedded",
                                  context_window=self.settings.embedded_context_window)
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

    def breaker(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(self.settings.breaker_failures,
                                     self.settings.breaker_reset_seconds)
            self._breakers[name] = breaker
        return breaker

    def resolve(self, model_settings: ModelSettings | None,
                ) -> tuple[LLM, GenerationSettings]:
        """The persona's provider wrapped with its fallbacks, and its generation settings."""
        name = (model_settings.provider if model_settings else None) \
            or self.settings.default_provider
        config = self.config(name)
        chain_names = [name, *(f for f in dict.fromkeys(config.fallback) if f != name)]
        chain = [self.get(each) for each in chain_names]
        breakers = {llm.name: self.breaker(each) for llm, each in zip(chain, chain_names,
                                                                        strict=True)}
        llm = ResilientLLM(chain, breakers, retries=config.max_retries,
                           timeout=config.timeout_seconds)
        return llm, generation_settings(model_settings, config)

    async def aclose(self) -> None:
        """Close every provider built or registered here, each within a bound."""
        instances = list({id(llm): llm for llm in self._instances.values()}.values())
        self._instances.clear()
        self._embedded = None
        await asyncio.gather(*(_close(llm) for llm in instances))

    def _build(self, name: str, config: ProviderConfig) -> LLM:
        if config.kind == "openai":
            from personae.providers.openai_compat import OpenAICompatLLM

            return OpenAICompatLLM(name, config)
        if self._embedded is None:  # one loaded model, whatever names point at it
            from personae.providers.llama_cpp import EmbeddedLLM

            self._embedded = EmbeddedLLM.from_settings(self.settings)
        return self._embedded


def generation_settings(model_settings: ModelSettings | None,
                        config: ProviderConfig) -> GenerationSettings:
    """The persona's choices win; the provider's configured model is the default."""
    if model_settings is None:
        return GenerationSettings(model=config.model)
    return GenerationSettings(model=model_settings.model or config.model,
                              temperature=model_settings.temperature,
                              max_tokens=model_settings.max_tokens,
                              top_p=model_settings.top_p)


async def _close(llm: LLM) -> None:
    try:
        async with asyncio.timeout(CLOSE_BOUND_SECONDS):
            await llm.aclose()
    except Exception:
        pass
