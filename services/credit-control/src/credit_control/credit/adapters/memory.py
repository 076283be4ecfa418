"""The balance path's store in memory (service_layer.balance_events.BalanceStore): what
PostgreSQL holds for it, in dicts, so its use cases are tested without the stack. Writes
follow the SQL's rules (a stale position never wins, a decision id is taken once, a new
work order cancels the product's open ones for the other action)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.contracts.billing import BalanceChanged
from common.contracts.credit_control import CreditState
from common.contracts.snapshots import ProductSnapshot
from common.envelope import Envelope
from common.sending_hours import DEFAULT_CUSTOMER_WINDOW, SendingWindow

from ...collections.domain.promises import Promise, PromiseStatus
from ..domain.freezes import Freeze
from ..domain.ladder import Ladder
from ..domain.product_amount import product_amount_due
from ..domain.product_credit import ProductCredit
from ..domain.profiles import CreditProfile
from ..domain.rule_table import DEFAULT_RULES, RuleTable
from . import balance_sql as sql
from .product_credits import InMemoryProductCredits


@dataclass
class InMemoryBalanceStore:
    clock: datetime
    source: str = "credit-control"
    table: RuleTable = DEFAULT_RULES
    products: InMemoryProductCredits = field(default_factory=InMemoryProductCredits)
    positions: dict[str, BalanceChanged] = field(default_factory=dict)
    profiles_by_customer: dict[str, CreditProfile] = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[tuple[str, Envelope[Any]]] = field(default_factory=list)
    work_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    cleared: list[tuple[str, datetime, str]] = field(default_factory=list)
    freezes: list[Freeze] = field(default_factory=list)
    held: set[str] = field(default_factory=set)  # suspended by association (关联停机)
    promises: list[Promise] = field(default_factory=list)
    own_dues: dict[str, int] = field(default_factory=dict)  # product_amount_due_fen
    sending_window: SendingWindow = DEFAULT_CUSTOMER_WINDOW

    def now(self) -> datetime:
        return self.clock

    async def open_freezes(self) -> list[Freeze]:
        return [f for f in self.freezes if f.ended_at is None]

    async def open_promises(self, account_ids: list[str]) -> list[Promise]:
        wanted = set(account_ids)
        return [p for p in self.promises
                if p.status is PromiseStatus.OPEN and p.account_id in wanted]

    async def advance_positions(
        self, newest: list[BalanceChanged]) -> dict[str, sql.Position | None]:
        moved: dict[str, sql.Position | None] = {}
        for e in newest:
            seen = self.positions.get(e.account_id)
            if seen is None or seen.sequence < e.sequence:
                moved[e.account_id] = None if seen is None else (seen.sequence,
                                                                 seen.amount_due_fen)
                self.positions[e.account_id] = e
        return moved

    async def upsert_products(
        self, snapshots: list[tuple[BalanceChanged, ProductSnapshot]],
        since: Mapping[str, datetime] | None = None,
    ) -> tuple[dict[str, ProductCredit], dict[str, int]]:
        before: dict[str, int] = {}
        for event, snapshot in snapshots:
            owed = self.own_dues.get(snapshot.product_id)
            if owed is not None:
                before[snapshot.product_id] = owed
            self.own_dues[snapshot.product_id] = product_amount_due(event, snapshot.product_id)
            found = self.products.products.get(snapshot.product_id)
            oldest = sql.oldest_due_month(event)
            if found is None:  # new products start normal, their ladder at the oldest month
                found = ProductCredit(snapshot.product_id, event.account_id, snapshot.family,
                                      CreditState.NORMAL, ladder=Ladder(oldest),
                                      changed_at=(since or {}).get(snapshot.product_id,
                                                                   event.as_of))
                self.products.add(found)
            found.account_id, found.customer_id = event.account_id, event.customer.customer_id
            found.snapshot = snapshot
        return await self.products.load(p.product_id for _, p in snapshots), before

    async def rule_table(self) -> RuleTable:
        return self.table

    async def held_by_collections(self, product_ids: list[str]) -> set[str]:
        return self.held.intersection(product_ids)

    async def profiles(self, customer_ids: list[str]) -> dict[str, CreditProfile]:
        return {c: self.profiles_by_customer.get(c) or CreditProfile(c) for c in customer_ids}

    async def taken_decisions(self, decision_ids: list[str]) -> set[str]:
        return {d for d in decision_ids if d in self.decisions}

    async def write(self, writes: sql.BatchWrites) -> None:
        rows = [dict(zip(vars(writes.decisions), r, strict=True))
                for r in zip(*vars(writes.decisions).values(), strict=True)]
        if any(r["decision_id"] in self.decisions for r in rows):
            raise RuntimeError("decisions of the batch were taken meanwhile")
        self.decisions.update({r["decision_id"]: r for r in rows})
        for product, order in writes.work_orders:
            work_order_id = f"WO-{order.decision_id}-{order.action.value}"
            for other in self.work_orders.values():
                if (other["product_id"] == product.product_id and other["status"] == "created"
                        and other["action"] != order.action.value):
                    other["status"] = "cancelled"
            self.work_orders[work_order_id] = {
                "product_id": product.product_id, "action": order.action.value,
                "decision_id": order.decision_id, "status": "created", "created_at": order.at}
            product.pending_work_order_id = work_order_id
        for product_id, command in writes.commands.items():
            for other in self.work_orders.values():
                if other["product_id"] == product_id and other["action"] != command.action:
                    other["status"] = "cancelled"
        await self.products.save(writes.products)
        self.history += [dict(zip(vars(writes.history), r, strict=True))
                         for r in zip(*vars(writes.history).values(), strict=True)]
        self.outbox += writes.outbox

    async def close_cleared(self, cleared: list[tuple[str, datetime, str]]) -> None:
        self.cleared += cleared
