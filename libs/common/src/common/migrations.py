"""Alembic, one migration history per service, each in its own schema."""

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(script_location: Path, database_url: str, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


def upgrade(script_location: Path, database_url: str, schema: str) -> None:
    command.upgrade(alembic_config(script_location, database_url, schema), "head")


def run_env(metadata: MetaData | None = None) -> None:
    """The body of every service's migrations/env.py (online mode only)."""
    cfg = context.config
    schema: str = cfg.attributes["schema"]
    url = cfg.get_main_option("sqlalchemy.url")
    assert url is not None

    def migrate(conn: Connection) -> None:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=conn, target_metadata=metadata, version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            # One migrator per schema at a time, even when several instances start together.
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            await conn.run_sync(migrate)
        await engine.dispose()

    asyncio.run(main())


def create_plumbing_tables(schema: str) -> None:
    """Create outbox, inbox and idempotency keys (version 1 of their shape) in `schema`.

    Called from each service's first migration. Their shape is frozen here: a later change
    to them comes as a new helper and a new migration in every service, never an edit.
    """
    from alembic import op

    from common.plumbing import plumbing_metadata

    plumbing_metadata(schema).create_all(bind=op.get_bind())
