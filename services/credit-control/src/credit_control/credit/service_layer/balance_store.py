"""The balance path's store in PostgreSQL: the consumer's transaction (`conn`), every read
and write one statement for the whole batch (adapters/balance_sql.py,
adapters/product_credits.py)."""

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.billing import BalanceChanged
from common.contracts.snapshots import ProductSnapshot

from ...admin.adapters import admin_repository as admin_repo
from ...collections.adapters import case_sql, promise_sql, worklist_sql
from ...collections.domain.promises import Promise
from ...metrics import count_decisions
from ...service_layer.context import CreditContext
from ..adapters import balance_sql as sql
from ..adapters import freeze_sql
from ..adapters.product_credits import SqlProductCredits, from_record
from ..domain.freezes import Freeze
from ..domain.product_credit import ProductCredit
from ..domain.profiles import CreditProfile
from ..domain.rule_table import RuleTable
from .work_order_book import cancel_superseded, open_work_order

# From this many outbox events a batch (a backlog's, not a quiet stream's) packs them.
PACK_FROM = 64


class SqlBalanceStore:
    def __init__(self, ctx: CreditContext, conn: AsyncConnection) -> None:
        self.ctx, self.conn = ctx, conn
        self.source = ctx.source
        self.sending_window = ctx.settings.sending_window
        self.products = SqlProductCredits(conn)
        self._hints: sql.BatchHints | None = None  # from the products' upsert

    def now(self) -> datetime:
        return self.ctx.clock.now()

    async def advance_positions(
        self, newest: list[BalanceChanged]) -> dict[str, sql.Position | None]:
        return await sql.advance_positions(self.conn, newest)

    async def upsert_products(
        self, snapshots: list[tuple[BalanceChanged, ProductSnapshot]],
        since: Mapping[str, datetime] | None = None,
    ) -> tuple[dict[str, ProductCredit], dict[str, int]]:
        rows, self._hints = await sql.upsert_products(self.conn, snapshots, since)
        newest = {p.product_id: p for _, p in snapshots}
        before = sql.OWN_DUE_BEFORE
        return ({r[0]: from_record(r, newest[r[0]]) for r in rows},
                {r[0]: r[before] for r in rows if r[before] is not None})

    # The reads below skip their round trip when the batch hints (`sql.BatchHints`) say it
    # would find nothing for these customers or accounts; they are made otherwise.

    async def rule_table(self) -> RuleTable:
        hints = self._hints
        return await self.ctx.rules.current(self.conn, hints.rule_version if hints else None)

    async def profiles(self, customer_ids: list[str]) -> dict[str, CreditProfile]:
        hints = self._hints
        if hints and not hints.any_profile and hints.customers.issuperset(customer_ids):
            return {c: CreditProfile(c) for c in customer_ids}  # as profiles_for's unknown
        return await admin_repo.profiles_for(self.conn, customer_ids)

    async def taken_decisions(self, decision_ids: list[str]) -> set[str]:
        return await sql.taken_decisions(self.conn, decision_ids)

    async def open_freezes(self) -> list[Freeze]:
        if self._hints and not self._hints.any_freeze:
            return []
        return await freeze_sql.open_freezes(self.conn)

    async def open_promises(self, account_ids: list[str]) -> list[Promise]:
        hints = self._hints
        if hints and not hints.any_promise and hints.accounts.issuperset(account_ids):
            return []
        return await promise_sql.open_promises(self.conn, account_ids)

    async def write(self, writes: sql.BatchWrites) -> None:
        """Decisions, work orders, products, history and outbox rows, one statement each."""
        conn, decisions = self.conn, writes.decisions
        if decisions.decision_id:
            written = await sql.insert_decisions(conn, decisions)
            if written != len(decisions.decision_id):
                # Cannot happen while the products are locked; retried as a whole if it does.
                raise RuntimeError(f"{len(decisions.decision_id) - written} decisions of the "
                                   "batch were taken meanwhile")
            count_decisions(conn, decisions.decision)
        for product, order in writes.work_orders:
            product.pending_work_order_id = await open_work_order(
                self.ctx, conn, product, order.action, order.decision_id, order.reason,
                order.at)
        for product_id, command in sorted(writes.commands.items()):
            # An escalated (manual) work order for the opposite action is void now that the
            # chain has a new command, e.g. a payment's restore after a failed suspension.
            product = next(p for p in writes.products if p.product_id == product_id)
            await cancel_superseded(
                self.ctx, conn, product_id, command.action,
                product.moved_at or command.requested_at,
                f"superseded by command {command.command_id} ({command.action.value})")
        await self.products.save(writes.products)
        await sql.insert_history(conn, writes.history)
        # Under load a batch publishes about an event per balance event (amounts revised):
        # then 16 of a topic to a row, as the sweep and the gateway's results (common.outbox:
        # a row costs its heap tuple, index entries and queue row, whatever its bytes). A
        # small batch's rows stay one event each: readers by key (`outbox_messages`) find
        # those by index, a group only by taking it apart.
        await self.ctx.outbox.add_many(conn, writes.outbox,
                                       pack=len(writes.outbox) >= PACK_FROM)

    async def close_cleared(self, cleared: list[tuple[str, datetime, str]]) -> None:
        await worklist_sql.close_cleared(self.conn, cleared)

    async def held_by_collections(self, product_ids: list[str]) -> set[str]:
        return await case_sql.held_products(self.conn, product_ids)
