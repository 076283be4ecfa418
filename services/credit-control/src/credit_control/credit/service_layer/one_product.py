"""One product's decision that no balance event asked for (a credit-admin's review restores
it; a collections case suspends it by association, restores or disconnects it): the balance
path's moves (`Batch.decide_one`) on the product's stored facts, its account's newest
position standing in for the event, so the decision's chain command, work order and events
are exactly those a payment's or a sweep's would be."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.billing import BalanceChanged
from common.contracts.snapshots import ProductSnapshot
from common.envelope import convert, to_builtins

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext
from ..adapters import repository as repo
from ..adapters.product_credits import from_row
from .balance_events import Batch, held_products
from .balance_store import SqlBalanceStore


async def product_batch(ctx: CreditContext, conn: AsyncConnection,
                        product: Any) -> tuple[Batch, SqlBalanceStore] | None:
    """A batch of the one product (a row locked by `repo.product_for_update`) on its
    account's newest position, and the store to write it with; None when the account has no
    position (cannot happen: a product row always comes with one)."""
    batch, store = await products_batch(ctx, conn, [product])
    return (batch, store) if batch.loaded else None


async def products_batch(ctx: CreditContext, conn: AsyncConnection,
                         products: list[Any]) -> tuple[Batch, SqlBalanceStore]:
    """One batch of these products (rows locked in product id order), each on its account's
    newest position as an event of its own carrying it alone, and the store to write it
    with. A product whose account has no position is left out (cannot happen)."""
    positions = await repo.positions(conn, sorted({p.account_id for p in products}))
    loaded, snapshots = {}, {}
    for product in products:
        position = positions.get(product.account_id)
        if position is None:
            continue
        snapshot = convert(product.product, ProductSnapshot)
        snapshots[product.product_id] = (_event_of(position, snapshot), snapshot)
        loaded[product.product_id] = from_row(product, snapshot)
    table = await ctx.rules.current(conn)
    profiles = await admin_repo.profiles_for(
        conn, sorted({e.customer.customer_id for e, _ in snapshots.values()}))
    store = SqlBalanceStore(ctx, conn)
    # What a balance batch also knows (balance_events.apply_balance_events): the freezes in
    # force, the accounts' open promises, the products an association holds. Without them a
    # profile change's reconsideration would suspend a frozen or promised product, or
    # restore one held by a collections case, as no balance event would.
    accounts = sorted({p.account_id for p in loaded.values()})
    return Batch(store, table, profiles, loaded, snapshots,
                 freezes=await store.open_freezes(), held=await held_products(store, loaded),
                 promises={p.account_id: p for p in await store.open_promises(accounts)}
                 ), store


def _event_of(position: Any, snapshot: ProductSnapshot) -> BalanceChanged:
    """The account's newest position as the balance event that would bring it, carrying the
    one product."""
    return convert({
        "account_id": position.account_id, "sequence": position.sequence,
        "cause": position.cause, "as_of": position.as_of, "balance_fen": position.balance_fen,
        "amount_due_fen": position.amount_due_fen, "dues": position.dues,
        "customer": position.customer, "products": [to_builtins(snapshot)],
        "deposit_fen": position.deposit_fen}, BalanceChanged)
