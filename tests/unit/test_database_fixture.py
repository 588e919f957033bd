"""The database fixtures hand out working, private databases."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from personae.db.engine import MIGRATIONS_DIR, current_revision, head_revision, make_engine
from tests.conftest import migrations_digest
from tests.support import postgres as pg


async def test_database_url_connects(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            if engine.dialect.name == "postgresql":
                version = int((await conn.execute(text("SHOW server_version_num"))).scalar_one())
                assert version >= 130000
                name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
                assert name.startswith(pg.DATABASE_PREFIX)
            else:
                assert engine.dialect.name == "sqlite"
    finally:
        await engine.dispose()


async def test_sqlite_url_is_a_file_in_tmp_path(sqlite_url: str, tmp_path) -> None:
    assert sqlite_url == f"sqlite+aiosqlite:///{tmp_path.as_posix()}/personae.db"
    engine = create_async_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE marker (id INTEGER PRIMARY KEY)"))
        assert (tmp_path / "personae.db").exists()
    finally:
        await engine.dispose()


async def test_postgres_databases_are_isolated_and_dropped(postgres_url: str) -> None:
    import asyncpg

    server = pg.server_url()
    assert server is not None
    async with pg.temporary_database(server) as other_url:
        other_name = pg.database_name(other_url)
        assert other_name != pg.database_name(postgres_url)
        engine = create_async_engine(postgres_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE marker (id INTEGER PRIMARY KEY)"))
        finally:
            await engine.dispose()
        # Left open on purpose: dropping must not wait for sessions a test forgot.
        leftover = await asyncpg.connect(pg.asyncpg_dsn(other_url))
        tables = await leftover.fetch("SELECT tablename FROM pg_tables WHERE tablename = 'marker'")
        assert tables == []
    try:
        conn = await asyncpg.connect(pg.asyncpg_dsn(server))
        try:
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_database WHERE datname = $1", other_name
                )
                == 0
            )
        finally:
            await conn.close()
    finally:
        leftover.terminate()


async def _revision_and_rows(url: str) -> tuple[str | None, dict[str, int]]:
    """The schema revision of the database at ``url`` and the row count of each table."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: sync.dialect.get_table_names(sync))
            rows = {name: (await conn.execute(text(f'SELECT count(*) FROM "{name}"')))
                    .scalar_one() for name in names if name != "alembic_version"}
        return await current_revision(engine), rows
    finally:
        await engine.dispose()


async def test_database_url_is_migrated_to_head_with_no_rows(database_url: str) -> None:
    revision, rows = await _revision_and_rows(database_url)
    assert revision == head_revision()
    assert {"personas", "users", "sessions"} <= rows.keys()
    assert set(rows.values()) == {0}


async def test_sqlite_url_and_postgres_url_are_migrated_too(sqlite_url: str,
                                                             postgres_url: str) -> None:
    for url in (sqlite_url, postgres_url):
        revision, rows = await _revision_and_rows(url)
        assert revision == head_revision() and set(rows.values()) == {0}


async def test_empty_database_url_has_no_tables(empty_database_url: str) -> None:
    assert await _revision_and_rows(empty_database_url) == (None, {})


async def test_a_sqlite_copy_does_not_write_to_the_template(sqlite_url: str,
                                                            sqlite_template: Path) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO users (id, name, role, created_at, disabled) "
                                    "VALUES ('u', 'u', 'member', '2020-01-01', false)"))
    finally:
        await engine.dispose()
    assert (await _revision_and_rows(sqlite_url))[1]["users"] == 1
    template_url = f"sqlite+aiosqlite:///{sqlite_template.as_posix()}"
    assert (await _revision_and_rows(template_url))[1]["users"] == 0


def test_the_migrations_digest_changes_with_any_migration(tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    assert migrations_digest(copy) == migrations_digest(MIGRATIONS_DIR)
    first = sorted((copy / "versions").glob("*.py"))[0]
    first.write_text(first.read_text() + "\n# changed\n")
    assert migrations_digest(copy) != migrations_digest(MIGRATIONS_DIR)


async def _server_databases(server: str) -> dict[str, bool]:
    """Each database on the server, and whether it accepts connections."""
    import asyncpg  # imported lazily: SQLite-only runs need no PostgreSQL driver

    conn = await asyncpg.connect(pg.asyncpg_dsn(server))
    try:
        return {row["datname"]: row["datallowconn"]
                for row in await conn.fetch("SELECT datname, datallowconn FROM pg_database")}
    finally:
        await conn.close()


async def test_a_postgres_template_is_built_once_per_key_and_closed(postgres_url: str) -> None:
    server, key = pg.server_url(), uuid.uuid4().hex[:16]
    assert server is not None
    built: list[str] = []

    async def build(url: str) -> None:
        built.append(url)
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE marker (id INTEGER PRIMARY KEY)"))
        finally:
            await engine.dispose()

    names = await asyncio.gather(*(pg.ensure_template(server, key, build) for _ in range(2)))
    try:
        assert names[0] == names[1] == pg.TEMPLATE_PREFIX + key
        assert 1 <= len(built) <= 2  # racing builders may both build; one copy is kept
        assert await pg.ensure_template(server, key, build) == names[0]
        assert len(built) <= 2
        databases = await _server_databases(server)
        assert databases[names[0]] is False  # nobody may connect to it while it is copied
        assert not {pg.database_name(url) for url in built} & databases.keys() - {names[0]}
        async with pg.temporary_database(server, template=names[0]) as copy:
            engine = create_async_engine(copy)
            try:
                async with engine.connect() as conn:
                    assert (await conn.execute(text("SELECT count(*) FROM marker"))
                            ).scalar_one() == 0
            finally:
                await engine.dispose()
    finally:
        await pg.drop_database(server, names[0])


async def test_a_failed_template_build_leaves_no_database(postgres_url: str) -> None:
    server, key = pg.server_url(), uuid.uuid4().hex[:16]
    assert server is not None
    tried: list[str] = []

    async def build(url: str) -> None:
        tried.append(url)
        raise RuntimeError("migration failed")

    with pytest.raises(RuntimeError, match="migration failed"):
        await pg.ensure_template(server, key, build)
    databases = await _server_databases(server)
    assert pg.TEMPLATE_PREFIX + key not in databases
    assert pg.database_name(tried[0]) not in databases
