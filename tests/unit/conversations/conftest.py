from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from personae.auth.principal import Principal
from personae.config import ProviderConfig, Settings
from personae.providers.fake import ScriptedLLM
from personae.runtime import Runtime
from tests.support.chat import Chat, open_chat
from tests.support.runtime import MEMBERS, create_people, open_runtime


@pytest.fixture
async def chat(database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    """A runtime talking to a real loopback OpenAI-protocol server, with two users."""
    async with open_chat(database_url, tmp_path) as harness:
        yield harness


@dataclass
class Harness:
    runtime: Runtime
    alice: Principal
    llm: ScriptedLLM


@pytest.fixture
async def scripted(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """A runtime whose only model is the scripted fake (what it was asked is recorded)."""
    settings = Settings(data_dir=tmp_path, database_url=database_url,
                        default_provider="scripted", anonymous_loopback=False,
                        providers={"scripted": ProviderConfig(kind="scripted")})
    async with open_runtime(settings) as runtime:
        people = await create_people(runtime, MEMBERS)
        llm = runtime.providers.get("scripted")
        assert isinstance(llm, ScriptedLLM)
        yield Harness(runtime, people["alice"], llm)
