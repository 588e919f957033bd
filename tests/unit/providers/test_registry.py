"""Resolving a model choice to a provider chain and generation settings."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderUnavailable
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationSettings,
    ModelChoice,
    StreamEvent,
    TextDelta,
    Usage,
)
from personae.providers.fake import FakeOpenAIServer
from personae.providers.openai_compat import OpenAICompatLLM
from personae.providers.registry import ProviderRegistry, generation_settings
from personae.providers.resilience import ResilientLLM
from personae.providers.streams import complete

HELLO = [ChatMessage("user", "hi")]


class StaticLLM:
    """An in-process provider that answers a fixed text and remembers being closed."""

    context_window = 2048

    def __init__(self, name: str, text: str = "static") -> None:
        self.name, self.text, self.closed = name, text, False

    async def stream(self, messages: Sequence[ChatMessage],
                     settings: GenerationSettings) -> AsyncIterator[StreamEvent]:
        yield TextDelta(self.text)
        yield Finished(Usage(1, 1), "stop", "", settings.model or "")

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(reply="from fake") as running:
        yield running


def make_settings(tmp_path: Path, providers: dict[str, dict[str, Any]],
                  default: str = "fake") -> Settings:
    configs = {name: ProviderConfig(**config) for name, config in providers.items()}
    return Settings(data_dir=tmp_path, providers=configs, default_provider=default,
                    breaker_failures=2, breaker_reset_seconds=60)


@pytest.fixture
async def registry(tmp_path: Path, server: FakeOpenAIServer) -> AsyncIterator[ProviderRegistry]:
    settings = make_settings(tmp_path, {"fake": {
        "kind": "openai", "base_url": server.base_url, "model": "configured-model",
        "timeout_seconds": 5, "max_retries": 1}})
    built = ProviderRegistry(settings)
    yield built
    await built.aclose()


async def test_choices_are_forwarded(registry: ProviderRegistry,
                                              server: FakeOpenAIServer) -> None:
    choice = ModelChoice(provider="fake", model="persona-model", temperature=0.2,
                            max_tokens=64, top_p=0.5)
    llm, settings = registry.resolve(choice)
    assert settings == GenerationSettings(model="persona-model", temperature=0.2,
                                          max_tokens=64, top_p=0.5)
    completion = await complete(llm, HELLO, settings)
    assert (completion.text, completion.provider) == ("from fake", "fake")
    sent = server.last_request
    assert (sent.model, sent.temperature) == ("persona-model", 0.2)
    assert (sent.body["max_tokens"], sent.body["top_p"]) == (64, 0.5)


async def test_default_provider_and_configured_model(registry: ProviderRegistry,
                                                     server: FakeOpenAIServer) -> None:
    llm, settings = registry.resolve(None)
    assert settings == GenerationSettings(model="configured-model")
    await complete(llm, HELLO, settings)
    assert server.last_request.model == "configured-model"
    assert "temperature" not in server.last_request.body
    _, from_empty = registry.resolve(ModelChoice(temperature=1.1))
    assert (from_empty.model, from_empty.temperature) == ("configured-model", 1.1)


async def test_resolved_llm_uses_configured_retries_and_timeout(
        registry: ProviderRegistry) -> None:
    llm, _ = registry.resolve(None)
    assert isinstance(llm, ResilientLLM)
    assert (llm.retries, llm.timeout, llm.name) == (1, 5, "fake")
    assert [provider.name for provider in llm.chain] == ["fake"]


async def test_unknown_provider_is_unavailable_and_lists_names(
        registry: ProviderRegistry) -> None:
    with pytest.raises(ProviderUnavailable, match="configured: embedded, fake") as caught:
        registry.resolve(ModelChoice(provider="nope"))
    assert caught.value.status == 503 and caught.value.provider == "nope"


async def test_providers_and_breakers_are_built_once(registry: ProviderRegistry) -> None:
    first = registry.get("fake")
    assert isinstance(first, OpenAICompatLLM)
    assert registry.get("fake") is first
    assert registry.breaker("fake") is registry.breaker("fake")
    llm_a, _ = registry.resolve(None)
    llm_b, _ = registry.resolve(None)
    assert isinstance(llm_a, ResilientLLM) and isinstance(llm_b, ResilientLLM)
    assert llm_a.breakers["fake"] is llm_b.breakers["fake"] is registry.breaker("fake")


async def test_configured_fallback_answers_with_its_own_model(
        tmp_path: Path, server: FakeOpenAIServer) -> None:
    async with FakeOpenAIServer(reply="from backup") as backup:
        settings = make_settings(tmp_path, {
            "main": {"kind": "openai", "base_url": server.base_url, "model": "main-model",
                     "max_retries": 0, "fallback": ["backup"]},
            "backup": {"kind": "openai", "base_url": backup.base_url, "model": "backup-model"},
        }, default="main")
        registry = ProviderRegistry(settings)
        server.fail_always(status=503)
        llm, generation = registry.resolve(ModelChoice(temperature=0.4))
        completion = await complete(llm, HELLO, generation)
        await registry.aclose()
    assert (completion.text, completion.provider) == ("from backup", "backup")
    assert (backup.last_request.model, backup.last_request.temperature) == ("backup-model", 0.4)


async def test_unknown_fallback_is_reported(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {"main": {"kind": "openai", "model": "m",
                                                 "fallback": ["missing"]}}, default="main")
    with pytest.raises(ProviderUnavailable, match="missing: no such provider"):
        ProviderRegistry(settings).resolve(None)


async def test_registered_instances_resolve_and_are_closed(tmp_path: Path) -> None:
    registry = ProviderRegistry(make_settings(tmp_path, {}, default="embedded"))
    embedded = StaticLLM("embedded", "local reply")
    registry.register("embedded", embedded)
    assert "embedded" in registry.names()
    llm, settings = registry.resolve(None)
    completion = await complete(llm, HELLO, settings)
    assert (completion.text, completion.provider) == ("local reply", "embedded")
    await registry.aclose()
    assert embedded.closed


async def test_registered_plugin_can_be_a_fallback(tmp_path: Path,
                                                   server: FakeOpenAIServer) -> None:
    settings = make_settings(tmp_path, {"fake": {
        "kind": "openai", "base_url": server.base_url, "model": "m", "max_retries": 0,
        "fallback": ["embedded"]}})
    registry = ProviderRegistry(settings)
    registry.register("embedded", StaticLLM("embedded", "offline answer"))
    server.fail_always(status=500)
    llm, generation = registry.resolve(None)
    completion = await complete(llm, HELLO, generation)
    assert (completion.text, completion.provider) == ("offline answer", "embedded")
    await registry.aclose()


def test_model_choice_is_a_frozen_value() -> None:
    choice = ModelChoice(provider="fake", temperature=0.3)
    assert choice == ModelChoice(provider="fake", temperature=0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        choice.model = "other"  # type: ignore[misc]


async def test_any_object_with_the_choice_attributes_resolves(
        registry: ProviderRegistry) -> None:
    """Callers holding another record with the same fields (a persona's model settings)
    need no conversion at runtime."""
    record = SimpleNamespace(provider="fake", model=None, temperature=0.7, max_tokens=12,
                             top_p=None)
    _, settings = registry.resolve(record)  # type: ignore[arg-type]
    assert settings == GenerationSettings(model="configured-model", temperature=0.7,
                                          max_tokens=12)


def test_generation_settings_from_a_choice() -> None:
    config = ProviderConfig(kind="openai", model="configured")
    assert generation_settings(None, config) == GenerationSettings(model="configured")
    chosen = generation_settings(ModelChoice(model="mine", top_p=0.9), config)
    assert chosen == GenerationSettings(model="mine", top_p=0.9)
