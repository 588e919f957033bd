from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.chat import Chat, open_chat


@pytest.fixture
async def chat(database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    """A runtime talking to a real loopback OpenAI-protocol server, with two users."""
    async with open_chat(database_url, tmp_path) as harness:
        yield harness
