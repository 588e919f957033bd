"""The database fixtures hand out working, private databases."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

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
