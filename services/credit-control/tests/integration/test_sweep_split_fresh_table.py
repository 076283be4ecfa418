"""A month-end on a product table never analysed still splits into ranges: PostgreSQL gives
such a table's row estimate as -1 (`pg_class.reltuples`, since 14), which the split read as
"too few products", so a first sweep over freshly loaded data ran in one lane."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import credit_control
from common.migrations import alembic_config
from common.testing.stack import Stack
from credit_control.credit.adapters import sweep_sql

pytestmark = [pytest.mark.integration]

MIGRATIONS = Path(credit_control.__file__).parent / "adapters" / "migrations"
PRODUCTS = 3_000


@pytest.fixture
async def fresh(stack: Stack) -> AsyncIterator[AsyncEngine]:
    """A database of the test's own, migrated, its products loaded and never analysed
    (autovacuum off for the table, so its first ANALYZE cannot come in between)."""
    dsn = stack.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"split_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{stack.database_url.rpartition('/')[0]}/{name}"
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS, url, "credit"),
                                "head")
        async with engine.begin() as conn:
            await conn.execute(text(
                "ALTER TABLE credit.product_credit SET (autovacuum_enabled = false)"))
            await conn.execute(text(
                "INSERT INTO credit.product_credit (product_id, account_id, family, product, "
                "state, state_changed_at, customer_id, tier) "
                "SELECT 'P' || lpad(i::text, 6, '0'), 'A' || i, 'ADC', "
                "json_build_object('product_id', 'P' || i), 'normal', now(), 'C' || i, 'mid' "
                "FROM generate_series(1, :n) i"), {"n": PRODUCTS})
        yield engine
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_never_analysed_product_table_still_splits_into_ranges(
        fresh: AsyncEngine) -> None:
    async with fresh.connect() as conn:
        estimate = await conn.scalar(text(
            "SELECT reltuples FROM pg_class WHERE oid = 'credit.product_credit'::regclass"))
        assert estimate == -1  # the case itself: never analysed
        points = await sweep_sql.split_points(conn, "", [0.25, 0.5, 0.75], 1_000)
        assert len(points) == 3 and points == sorted(points), points
        # Still refused below the minimum, counted the same way.
        assert await sweep_sql.split_points(conn, "", [0.5], PRODUCTS + 1) == []
        # Once analysed, the estimate answers as before.
        await conn.execute(text("ANALYZE credit.product_credit"))
        assert len(await sweep_sql.split_points(conn, "", [0.5], 1_000)) == 1
