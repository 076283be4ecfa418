"""Each service's tables are written twice, in adapters/tables.py (what the code uses) and in
its Alembic migrations (what the database gets). This test says when they drift apart."""

from types import ModuleType
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import billing_events.adapters.tables as billing
import credit_control.adapters.tables as credit
import gateway_adapter.adapters.tables as gateway
import notifier.adapters.tables as notifier

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize("tables", [billing, credit, notifier, gateway],
                         ids=lambda m: m.SCHEMA)
async def test_migrated_schema_matches_tables(db: AsyncEngine, tables: ModuleType) -> None:
    schema = tables.SCHEMA

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name == schema
        return name != "alembic_version"

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={
            "include_schemas": True, "include_name": include_name, "compare_type": True})
        return list(compare_metadata(context, tables.metadata))

    async with db.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], f"{schema}: tables.py and the migrations differ: {differences}"
