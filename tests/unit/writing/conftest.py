"""A runtime on a real database whose default model is the scripted fake, and its people."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.auth.principal import Principal
from personae.runtime import Runtime
from tests.support.runtime import create_people, open_runtime
from tests.support.writing_samples import scripted_settings


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with open_runtime(scripted_settings(database_url, tmp_path)) as opened:
        yield opened


@pytest.fixture
async def people(runtime: Runtime) -> dict[str, Principal]:
    return await create_people(runtime)
