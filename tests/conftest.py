"""Shared fixtures: a database URL per test, on SQLite and on PostgreSQL.

``database_url`` runs each test that asks for it twice, ids ``sqlite`` and
``postgres``. The PostgreSQL variant gets a brand-new database on the server named
by ``PERSONAE_TEST_POSTGRES_URL`` and drops it afterwards; without that variable it
is skipped, or fails when ``PERSONAE_REQUIRE_POSTGRES=1`` (``scripts/test.sh`` sets
both). Select one side with ``-k sqlite`` / ``-k postgres`` or ``-m "not postgres"``.

Each test's database is its own, with no rows, and already migrated to head
(``database_url``, ``sqlite_url``, ``postgres_url``): migrating took most of a test's
set-up, so each is a copy of a template migrated once, a SQLite file per session or
a PostgreSQL template database named after a digest of the migrations (changed
migrations get a new one). PostgreSQL copies are made one test ahead and dropped in
the background, on a thread of their own. Tests of the migrations themselves ask for
``empty_database_url``: no tables at all.

``redis_url`` gives a test an empty Redis database on the server named by
``PERSONAE_TEST_REDIS_URL``; without it the test is skipped, or fails when
``PERSONAE_REQUIRE_REDIS=1`` (``scripts/test.sh`` sets both). Tests that use it are
marked ``redis``: leave them out with ``-m "not redis"``.

The embedded model is pinned to ``smollm2-135m`` (unless ``PERSONAE_EMBEDDED_MODEL`` is
set), as ``scripts/test.sh`` does, so tests never load or assemble a big model.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import alembic
import pytest
import sqlalchemy

from personae.db.engine import MIGRATIONS_DIR, make_engine, migrate
from tests.support import postgres as pg
from tests.support import redis as rd

os.environ.setdefault("PERSONAE_EMBEDDED_MODEL", "smollm2-135m")


T = TypeVar("T")
POSTGRES_AHEAD = 1  # one is enough to hide the copying; more only compete for the CPU
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def sqlite_url_for(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{(directory / 'personae.db').as_posix()}"


def migrations_digest(folder: Path = MIGRATIONS_DIR) -> str:
    """Names what a migrated template holds: the migrations and what renders them."""
    digest = hashlib.sha256(f"{alembic.__version__} {sqlalchemy.__version__}".encode())
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


async def migrate_url(url: str) -> None:
    """Migrate the database at ``url`` to head, leaving no connection open."""
    engine = make_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def _on_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to the end on a thread and event loop of its own: a session fixture
    may first be needed while a loop already runs on this thread (an async fixture's,
    or Playwright's)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session, closed: each test gets a copy."""
    folder = tmp_path_factory.mktemp("migrated")
    _on_own_loop(migrate_url(sqlite_url_for(folder)))
    assert [p.name for p in folder.iterdir()] == ["personae.db"], "left a journal behind"
    return folder / "personae.db"


@pytest.fixture(scope="session")
def postgres_template() -> str:
    """A PostgreSQL template database migrated to head (built once per server and set of
    migrations, then kept for later sessions): each test gets a copy."""
    server = _postgres_server()
    return _on_own_loop(pg.ensure_template(server, migrations_digest(), migrate_url))


@pytest.fixture(scope="session")
def postgres_databases(postgres_template: str) -> Iterator[pg.DatabasePool]:
    """Copies of the migrated template, each test's made while the test before runs."""
    pool = pg.DatabasePool(_postgres_server(), postgres_template, ahead=POSTGRES_AHEAD)
    yield pool
    pool.close()


def _sqlite_copy(template: Path, directory: Path) -> str:
    shutil.copyfile(template, directory / "personae.db")
    return sqlite_url_for(directory)


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """SQLAlchemy async URL of a database private to this test: migrated, no rows."""
    if request.param == "sqlite":
        yield _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    _postgres_server()  # skips (or fails) here, per test, if there is none
    pool: pg.DatabasePool = request.getfixturevalue("postgres_databases")
    url = await pool.take()
    yield url
    pool.give_back(url)


@pytest.fixture(params=BACKENDS)
async def empty_database_url(request: pytest.FixtureRequest,
                             tmp_path: Path) -> AsyncIterator[str]:
    """SQLAlchemy async URL of a database private to this test with no tables at all,
    for tests of the migrations themselves."""
    if request.param == "sqlite":
        yield sqlite_url_for(tmp_path)
        return
    async with pg.temporary_database(_postgres_server()) as url:
        yield url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLAlchemy async URL of a SQLite database private to this test: migrated, no rows."""
    return _sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
async def postgres_url(postgres_databases: pg.DatabasePool) -> AsyncIterator[str]:
    """SQLAlchemy async URL of a PostgreSQL database private to this test: migrated, no
    rows."""
    url = await postgres_databases.take()
    yield url
    postgres_databases.give_back(url)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """``redis://`` URL of an empty Redis database, flushed again after this test."""
    async with rd.temporary_redis_db(_redis_server()) as url:
        yield url
