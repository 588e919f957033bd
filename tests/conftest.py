"""Shared fixtures: a database URL per test, on SQLite and on PostgreSQL.

``database_url`` runs each test that asks for it twice, ids ``sqlite`` and
``postgres``. The PostgreSQL variant gets a brand-new database on the server named
by ``PERSONAE_TEST_POSTGRES_URL`` and drops it afterwards; without that variable it
is skipped, or fails when ``PERSONAE_REQUIRE_POSTGRES=1`` (``scripts/test.sh`` sets
both). Select one side with ``-k sqlite`` / ``-k postgres`` or ``-m "not postgres"``.

``redis_url`` gives a test an empty Redis database on the server named by
``PERSONAE_TEST_REDIS_URL``; without it the test is skipped, or fails when
``PERSONAE_REQUIRE_REDIS=1`` (``scripts/test.sh`` sets both). Tests that use it are
marked ``redis``: leave them out with ``-m "not redis"``.

The embedded model is pinned to ``smollm2-135m`` (unless ``PERSONAE_EMBEDDED_MODEL`` is
set), as ``scripts/test.sh`` does, so tests never load or assemble a big model.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import postgres as pg
from tests.support import redis as rd

os.environ.setdefault("PERSONAE_EMBEDDED_MODEL", "smollm2-135m")


def sqlite_url_for(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{(directory / 'personae.db').as_posix()}"


def _configured(url: str | None, url_env: str, required: bool, require_env: str) -> str:
    """A test server's URL; skips (or fails, when required) if none is configured."""
    if url is not None:
        return url
    message = f"{url_env} is not set (scripts/test.sh starts a server)"
    if required:
        pytest.fail(f"{message}, but {require_env} is set", pytrace=False)
    pytest.skip(message)


def _postgres_server() -> str:
    return _configured(pg.server_url(), pg.POSTGRES_URL_ENV, pg.postgres_required(),
                       pg.REQUIRE_POSTGRES_ENV)


def _redis_server() -> str:
    return _configured(rd.server_url(), rd.REDIS_URL_ENV, rd.redis_required(),
                       rd.REQUIRE_REDIS_ENV)


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses ``redis_url`` (directly or through a fixture) ``redis``;
    run the browser tests last: Playwright's sync API keeps an event loop running on the
    main thread from its first test to the end of the session, where no asyncio test
    could run its own."""
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
    items.sort(key=_is_browser_test)  # stable: every other test keeps its order


def _is_browser_test(item: pytest.Item) -> bool:
    return "page" in getattr(item, "fixturenames", ()) or \
        "/tests/browser/" in str(item.path).replace(os.sep, "/")


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """SQLAlchemy async URL of an empty database private to this test."""
    if request.param == "sqlite":
        yield sqlite_url_for(tmp_path)
        return
    async with pg.temporary_database(_postgres_server()) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy async URL of an empty SQLite database private to this test."""
    return sqlite_url_for(tmp_path)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """SQLAlchemy async URL of an empty PostgreSQL database private to this test."""
    async with pg.temporary_database(_postgres_server()) as url:
        yield url


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """``redis://`` URL of an empty Redis database, flushed again after this test."""
    async with rd.temporary_redis_db(_redis_server()) as url:
        yield url
