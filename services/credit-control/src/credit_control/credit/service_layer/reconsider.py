"""Products reconsidered after their customer's credit profile changed with no balance event:
its tier by the rating (a run, an override made or removed), its star level or credit limit by
a credit-admin (`PUT /v1/profiles/{customer_id}`).

A balance event does this on every product it carries (`Batch._consider`): the ladder
reconciled with the tier and limit of its moment (docs/rules.md "Tier changes": an upgrade
voids a suspension warning that no longer announces the suspension, and the product goes back
to `warned`; the ladder restarts), then the balance rules (a product now within its limit is
cleared; a suspended one restored). Billing's master data changes come as balance events; a
profile change did not, so the product kept a suspension warning the upgrade had voided — and
when the override ended, that warning counted again and the next sweep suspended at once on a
deadline long past (QA pass 30). Here: in the profile change's own transaction, each product
of the customers, on its account's newest position (`one_product.product_batch`), as of the
change's moment.
"""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from ...service_layer.context import CreditContext
from ..adapters import repository as repo
from .one_product import products_batch

# Products a batch: a rating run may reconsider tens of thousands; each chunk is one batch,
# a handful of statements whatever its size, as a balance batch is (its rows stay locked to
# the end of the transaction, as they did one product at a time).
CHUNK = 1_000


async def reconsider_products(ctx: CreditContext, conn: AsyncConnection,
                              product_ids: Iterable[str], at: datetime, *,
                              trigger: str, correlation: str) -> int:
    """Each product (locked, in product id order, as the balance path locks them) against
    its facts and its customer's profile now; returns how many moved (a state or ladder
    change, a decision). `trigger`: what changed, the decisions' cause in their inputs.

    Set-wise, `CHUNK` products a batch: what one product decides depends on its own row,
    its account's position, its customer's profile, the rule table and the freezes,
    promises and collections cases, none of which a reconsider writes, so a batch of many
    decides what one batch each did (tests/integration/test_reconsider_many.py; QA pass 30's
    cases in test_qa_pass30_ladder.py)."""
    ids = sorted(set(product_ids))
    moved = 0
    for i in range(0, len(ids), CHUNK):
        moved += await _reconsider_chunk(ctx, conn, ids[i:i + CHUNK], at, trigger=trigger,
                                         correlation=correlation)
    return moved


async def _reconsider_chunk(ctx: CreditContext, conn: AsyncConnection, ids: list[str],
                            at: datetime, *, trigger: str, correlation: str) -> int:
    products = await repo.products_for_update(conn, ids)
    if not products:
        return 0
    batch, store = await products_batch(ctx, conn, products)
    # Never before the product's last change: a profile changed at a moment its product's
    # facts are already past (staff acting on a business day behind the product's, a
    # simulation ahead of the clock) takes effect from that change on.
    moments = {p.product_id: max(at, p.state_changed_at) for p in products}
    # What a balance event's batch asks too: a product suspended by association (关联停机)
    # is restored by its collections case only; open freezes and promises.
    batch.held = frozenset(await store.held_by_collections(list(batch.loaded)))
    batch.freezes = await store.open_freezes()
    batch.promises = {p.account_id: p for p in await store.open_promises(
        sorted({p.account_id for p in batch.loaded.values()}))}
    await batch.reconsider(moments, correlation, trigger=trigger)
    w = batch.writes
    if not (w.products or w.decisions.decision_id):
        return 0
    await store.write(w)
    return len({p.product_id for p in w.products} | set(w.decisions.product_id))


async def reconsider_customers(ctx: CreditContext, conn: AsyncConnection,
                               customer_ids: Iterable[str], at: datetime, *,
                               trigger: str, correlation: str) -> int:
    """`reconsider_products` for every product of the customers credit control knows."""
    product_ids = [r.product_id for r in await repo.products_of_customers(
        conn, sorted(set(customer_ids)))]
    return await reconsider_products(ctx, conn, product_ids, at, trigger=trigger,
                                     correlation=correlation)
