from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.auth.principal import Principal
from personae.config import Settings
from personae.runtime import Runtime
from tests.support.runtime import create_people, open_runtime


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A migrated runtime on an empty database (SQLite and PostgreSQL)."""
    async with open_runtime(Settings(data_dir=tmp_path, database_url=database_url)) as rt:
        yield rt


@pytest.fixture
async def people(runtime: Runtime) -> dict[str, Principal]:
    """An admin and two members, as principals."""
    return await create_people(runtime)
