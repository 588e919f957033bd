from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from personae.auth.principal import Principal, Role
from personae.config import ProviderConfig, Settings
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime

TINA = {"id": "tina", "name": "Tina Kulkarni", "language": "hi", "language_policy": "strict",
        "greetings": ["नमस्ते, मैं तीना हूं।"], "voice": {"voice_id": "nova"},
        "knowledge": [
            {"title": "Manglik dosha", "content": "Mars in the seventh house; remedy: kumbh vivah"},
            {"title": "Muhurat", "content": "Auspicious wedding dates fall in winter months"}]}
MOHIT = {"id": "mohit", "name": "Mohit", "language": "en", "greetings": ["Hello, I am Mohit."],
         "voice": {"voice_id": "onyx"}}


@dataclass
class Chat:
    runtime: Runtime
    server: FakeOpenAIServer
    alice: Principal
    bob: Principal
    settings: Settings


def chat_settings(tmp_path: Path, database_url: str, base_url: str) -> Settings:
    fake = ProviderConfig(kind="openai", base_url=base_url, api_key="test-key",
                          model="fake-model", max_retries=0, timeout_seconds=5,
                          context_window=4096)
    return Settings(data_dir=tmp_path, database_url=database_url, default_provider="fake",
                    providers={"fake": fake}, anonymous_loopback=False)


@pytest.fixture
async def chat(database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    """A runtime talking to a real loopback OpenAI-protocol server, with two users."""
    async with FakeOpenAIServer() as server:
        settings = chat_settings(tmp_path, database_url, server.base_url)
        runtime = await Runtime.open(settings, watch=False)
        try:
            people = []
            for name in ("alice", "bob"):
                user = await runtime.users.create_user(name, Role.member)
                people.append(Principal(user.id, user.name, user.role))
            admin = await runtime.auth.local_admin()
            for persona in (TINA, MOHIT):
                await runtime.personas.create(admin, persona, global_scope=True)
            yield Chat(runtime, server, people[0], people[1], settings)
        finally:
            await runtime.close()
