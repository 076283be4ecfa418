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

    from common.plumbing import plumbing_metadata_v1

    plumbing_metadata_v1(schema).create_all(bind=op.get_bind())


def outbox_v2(schema: str) -> None:
    """Outbox version 2 in `schema` (each service's outbox migration): rows still waiting for
    the relay move to the narrow `outbox_pending`, a trigger queues every new row there, and
    `published_at` (with its partial index) goes: the relay no longer rewrites each ~1 KB row
    to mark it. Rows published before keep their place until retention prunes them."""
    from alembic import op

    from common.plumbing import outbox_queue_ddl

    s = f'"{schema}"'
    # No writer of an older release may slip a row in between the copy and the trigger.
    op.execute(f"LOCK TABLE {s}.outbox IN SHARE ROW EXCLUSIVE MODE")
    op.execute(f"CREATE TABLE {s}.outbox_pending (id bigint PRIMARY KEY)")
    op.execute(f"INSERT INTO {s}.outbox_pending (id) "
               f"SELECT id FROM {s}.outbox WHERE published_at IS NULL")
    for statement in outbox_queue_ddl(schema):
        op.execute(statement)
    op.execute(f"DROP INDEX IF EXISTS {s}.ix_outbox_unpublished")
    op.execute(f"ALTER TABLE {s}.outbox DROP COLUMN published_at")


def outbox_v3(schema: str) -> None:
    """Outbox version 3 in `schema` (each service's migration): the view `outbox_messages`
    (a row's messages, one view row each) and lz4 for compressed payloads
    (`common.plumbing.outbox_messages_ddl`). Rows already stored keep their compression."""
    from alembic import op

    from common.plumbing import outbox_messages_ddl

    for statement in outbox_messages_ddl(schema):
        op.execute(statement)
