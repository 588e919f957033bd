"""Migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from personae.db.engine import alembic_config, current_revision, make_engine, migrate
from personae.db.tables import metadata


def _differences(connection: Connection) -> list:
    context = MigrationContext.configure(connection)
    return compare_metadata(context, metadata)


async def test_migrations_match_the_declared_tables(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        assert await current_revision(engine) is None
        await migrate(engine)
        await migrate(engine)  # idempotent: a second start changes nothing
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert head is not None and await current_revision(engine) == head
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            tables = await connection.run_sync(
                lambda sync: set(sync.dialect.get_table_names(sync)))
        assert {"personas", "persona_versions", "persona_metrics", "users",
                "api_keys"} <= tables
    finally:
        await engine.dispose()
