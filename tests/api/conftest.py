from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.config import Settings
from tests.support.api import Api, serve_app
from tests.support.panel_api import PanelApi, serve_panels
from tests.support.writing_samples import scripted_settings


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The real app on a real database, with an admin and two members holding keys."""
    settings = Settings(data_dir=tmp_path, database_url=database_url, anonymous_loopback=False)
    async for harness in serve_app(settings):
        yield harness


@pytest.fixture
async def papi(database_url: str, tmp_path: Path) -> AsyncIterator[PanelApi]:
    """The app with the samples loaded, its provider a steerable fake model server."""
    async for harness in serve_panels(database_url, tmp_path):
        yield harness


@pytest.fixture
async def wapi(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app whose default model is the scripted fake (writing personas)."""
    async for harness in serve_app(scripted_settings(database_url, tmp_path,
                                                     anonymous_loopback=False)):
        yield harness
