from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.config import Settings
from tests.support.api import Api
from tests.support.web import WebUser, serve_dashboard, signed_in, web_client


@pytest.fixture
async def web(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The real app (API and dashboard) needing keys, with an admin and two members."""
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, anonymous_loopback=False)
    async for harness in serve_dashboard(settings):
        yield harness


@pytest.fixture
async def alice(web: Api) -> AsyncIterator[WebUser]:
    user = await signed_in(web, "alice")
    yield user
    await user.client.aclose()


@pytest.fixture
async def bob(web: Api) -> AsyncIterator[WebUser]:
    user = await signed_in(web, "bob")
    yield user
    await user.client.aclose()


@pytest.fixture
async def admin(web: Api) -> AsyncIterator[WebUser]:
    user = await signed_in(web, "admin")
    yield user
    await user.client.aclose()


@pytest.fixture
async def visitor(web: Api) -> AsyncIterator[WebUser]:
    """A browser that has not signed in."""
    user = WebUser(web_client(web))
    yield user
    await user.client.aclose()
