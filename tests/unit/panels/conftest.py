from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.panels import Panels, open_panels


@pytest.fixture
async def panels(database_url: str, tmp_path: Path) -> AsyncIterator[Panels]:
    """A runtime with panel-ready personas, talking to a real loopback OpenAI-protocol server."""
    async with open_panels(database_url, tmp_path) as harness:
        yield harness
