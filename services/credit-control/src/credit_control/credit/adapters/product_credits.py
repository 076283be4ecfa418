"""The product's credit (domain/product_credit.py) in credit.product_credit: loaded and saved
many at once, each direction one statement over whole columns (`= ANY`, `unnest`), as the
balance path's SQL does (adapters/balance_sql.py). `InMemoryProductCredits` keeps them in a
dict for use-case tests without the stack.

Lock order is everyone's: products in product id order.
"""

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import CreditState
from common.contracts.gateway import ProvisioningAction
from common.contracts.snapshots import ProductFamily, ProductSnapshot
from common.db import DriverStatement
from common.envelope import convert

from ..domain.ladder import ladder_of
from ..domain.product_credit import ProductCredit

# Dict lookups: an Enum(value) call costs several times more, once per product and batch.
_FAMILIES = {f.value: f for f in ProductFamily}
_STATES = {s.value: s for s in CreditState}
_ACTIONS = {a.value: a for a in ProvisioningAction}

# What an aggregate is made of (the upsert of the balance path returns the same).
COLUMNS = ("product_id, account_id, family, state, state_changed_at, command_seq, "
           "warning_level, cycle, ladder_month, suspension_warned_on, suspension_deadline, "
           "customer_id, pending_command_id, pending_decision_id, pending_work_order_id, "
           "command_action, command_at, command_attempt, command_sent_at, retry_at")
N_COLUMNS = len(COLUMNS.split(","))


def from_row(row: Any, snapshot: ProductSnapshot | None = None) -> ProductCredit:
    """An aggregate from a product_credit row with at least `COLUMNS` (and `product`, the
    snapshot, unless it is given)."""
    if snapshot is None and getattr(row, "product", None) is not None:
        snapshot = convert(row.product, ProductSnapshot)
    action = row.command_action
    return ProductCredit(
        row.product_id, row.account_id, _FAMILIES[row.family], _STATES[row.state],
        row.cycle, row.command_seq,
        ladder_of(row.ladder_month, row.warning_level, row.suspension_warned_on,
                  row.suspension_deadline),
        snapshot, row.customer_id, row.state_changed_at, None,
        row.pending_command_id, row.pending_decision_id, row.pending_work_order_id,
        _ACTIONS[action] if action else None, row.command_at, row.command_attempt,
        row.command_sent_at, row.retry_at)


def from_record(record: Any, snapshot: ProductSnapshot | None) -> ProductCredit:
    """The same from a row that starts with `COLUMNS`, by position (the balance path's
    upsert returns one per product of the batch, with its batch hints after them: unpacking
    is several times cheaper than looking twenty columns up by name)."""
    (product_id, account_id, family, state, changed_at, command_seq, warning_level, cycle,
     ladder_month, warned_on, deadline, customer_id, command_id, decision_id, work_order_id,
     action, command_at, attempt, sent_at, retry_at) = record[:N_COLUMNS]
    return ProductCredit(
        product_id, account_id, _FAMILIES[family], _STATES[state], cycle, command_seq,
        ladder_of(ladder_month, warning_level, warned_on, deadline), snapshot, customer_id,
        changed_at, None, command_id, decision_id, work_order_id,
        _ACTIONS[action] if action else None, command_at, attempt, sent_at, retry_at)


def _sql(statement: str) -> Any:
    return text(" ".join(statement.split()))


_LOAD = _sql(f"""
    SELECT {COLUMNS}, product FROM credit.product_credit
    WHERE product_id = ANY(CAST(:ids AS text[])) ORDER BY product_id FOR UPDATE""")

_SAVE = DriverStatement("""
    UPDATE credit.product_credit p SET state = u.state, state_changed_at = u.at,
        cycle = u.cycle, command_seq = u.command_seq, warning_level = u.warning_level,
        ladder_month = u.ladder_month, suspension_warned_on = u.warned_on,
        suspension_deadline = u.deadline, pending_command_id = u.command_id,
        pending_decision_id = u.decision_id, pending_work_order_id = u.work_order_id,
        command_action = u.action, command_at = u.command_at, command_attempt = u.attempt,
        command_sent_at = u.sent_at, retry_at = u.retry_at
    FROM unnest(CAST(:product_id AS text[]), CAST(:state AS text[]),
                CAST(:at AS timestamptz[]), CAST(:cycle AS integer[]),
                CAST(:command_seq AS bigint[]), CAST(:warning_level AS integer[]),
                CAST(:ladder_month AS date[]), CAST(:warned_on AS date[]),
                CAST(:deadline AS date[]), CAST(:command_id AS text[]),
                CAST(:decision_id AS text[]), CAST(:work_order_id AS text[]),
                CAST(:action AS text[]), CAST(:command_at AS timestamptz[]),
                CAST(:attempt AS integer[]), CAST(:sent_at AS timestamptz[]),
                CAST(:retry_at AS timestamptz[]))
         AS u(product_id, state, at, cycle, command_seq, warning_level, ladder_month,
              warned_on, deadline, command_id, decision_id, work_order_id, action, command_at,
              attempt, sent_at, retry_at)
    WHERE p.product_id = u.product_id""")


def _columns(products: list[ProductCredit]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {k: [] for k in (
        "product_id", "state", "at", "cycle", "command_seq", "warning_level", "ladder_month",
        "warned_on", "deadline", "command_id", "decision_id", "work_order_id", "action",
        "command_at", "attempt", "sent_at", "retry_at")}
    for p in products:
        ladder = p.ladder
        cols["product_id"].append(p.product_id)
        cols["state"].append(p.state)
        cols["at"].append(p.moved_at or p.changed_at)
        cols["cycle"].append(p.cycle)
        cols["command_seq"].append(p.command_seq)
        cols["warning_level"].append(ladder.warning_level)
        cols["ladder_month"].append(ladder.month)
        cols["warned_on"].append(ladder.suspension_warned_on)
        cols["deadline"].append(ladder.suspension_deadline)
        cols["command_id"].append(p.pending_command_id)
        cols["decision_id"].append(p.pending_decision_id)
        cols["work_order_id"].append(p.pending_work_order_id)
        cols["action"].append(p.command_action)
        cols["command_at"].append(p.command_at)
        cols["attempt"].append(p.command_attempt)
        cols["sent_at"].append(p.command_sent_at)
        cols["retry_at"].append(p.retry_at)
    return cols


class SqlProductCredits:
    """The aggregates of one transaction (`conn`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def load(self, product_ids: Iterable[str]) -> dict[str, ProductCredit]:
        """The products that exist among these, locked in product id order."""
        ids = sorted(set(product_ids))
        if not ids:
            return {}
        rows = await self.conn.execute(_LOAD, {"ids": ids})
        return {r.product_id: from_row(r) for r in rows}

    async def save(self, products: Iterable[ProductCredit]) -> None:
        """Every product that changed since loaded, in one statement."""
        dirty = sorted((p for p in products if p.dirty), key=lambda p: p.product_id)
        if dirty:
            await _SAVE.execute(self.conn, _columns(dirty))
            for p in dirty:
                p.dirty = False


class InMemoryProductCredits:
    """The same, in a dict (use-case tests without the stack). Loads hand out copies, as a
    database would: a change counts once saved."""

    def __init__(self, products: Mapping[str, ProductCredit] | None = None) -> None:
        self.products: dict[str, ProductCredit] = dict(products or {})

    async def load(self, product_ids: Iterable[str]) -> dict[str, ProductCredit]:
        return {i: replace(self.products[i]) for i in sorted(set(product_ids))
                if i in self.products}

    async def save(self, products: Iterable[ProductCredit]) -> None:
        for p in products:
            if p.dirty:
                p.dirty = False
                # The stored state's moment, as the SQL writes it.
                self.products[p.product_id] = replace(p, changed_at=p.moved_at or p.changed_at,
                                                      moved_at=None)

    def add(self, product: ProductCredit) -> None:
        self.products[product.product_id] = product
