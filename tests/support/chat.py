"""A runtime talking to a real loopback OpenAI-protocol server, with two users."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from personae.auth.principal import Principal
from personae.config import ProviderConfig, Settings
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime
from tests.support.personas import MOHIT, TINA
from tests.support.runtime import MEMBERS, create_global_personas, create_people, open_runtime


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


@asynccontextmanager
async def open_chat(database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    """Alice and Bob (members) and the global personas TINA and MOHIT, on a fake model."""
    async with FakeOpenAIServer() as server:
        settings = chat_settings(tmp_path, database_url, server.base_url)
        async with open_runtime(settings) as runtime:
            people = await create_people(runtime, MEMBERS)
            await create_global_personas(runtime, (TINA, MOHIT))
            yield Chat(runtime, server, people["alice"], people["bob"], settings)
