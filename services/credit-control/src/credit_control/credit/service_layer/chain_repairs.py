"""Reconciliation's repair (docs/gateway.md, Reconciliation): the gateway found a settled
difference (a lost block, 漏停, or a lost restore, 错停) and asks credit-control, which owns
the products' commands and their sequence, to send the product's desired command through the
chain again. The same path as a chain product's work order done (`ProductCredit.sync_command`,
published through the outbox in the product's transaction, its result not waited for).

Each request is judged under the product's lock (`ProductCredit.repair_refusal`): a repair
never fights a newer command, the closed loop or an open work order, and the same request
twice sends one command (the first moves the sequence on, the second is refused). A lost
block of a product an emergency freeze covers (domain/freezes.py) is not repaired while the
freeze is in force: the freeze says no one is cut off meanwhile (a billing error, a network
fault), and re-blocking a customer who can send is a cut-off; it is repaired by the first
run after the freeze ends. A lost restore is repaired whatever the freezes. After
`REPAIR_LIMIT` repairs in a row the next is refused: the chain does not hold the product, and
a person must look (each run would otherwise send a command reported as repaired). The
refusal opens a repair work order (`kind=repair`, `GET /v1/work-orders`) for the product,
named in the refusal; while it is open every later request is refused for it ("work order …
is open"), so there is one. Its done (service_layer/work_orders.py) sends nothing and starts
the limit again: only repairs after the newest one done count.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.reconciliation import (
    ChainRepair,
    ChainRepairBatch,
    ChainRepairRequest,
    ChainRepairResults,
    RepairOutcome,
)

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext, publish
from ..adapters import freeze_sql
from ..adapters.product_credits import SqlProductCredits
from ..domain.commands import WorkOrderKind
from ..domain.freezes import Freeze
from ..domain.product_credit import REPAIR_LIMIT, ProductCredit
from .work_order_book import open_work_order


async def repair(ctx: CreditContext, batch: ChainRepairBatch, by: str) -> ChainRepairResults:
    """One outcome per request, in order; the commands sent and their audit entries are
    written in one transaction with the products' new sequences."""
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        products = SqlProductCredits(conn)
        loaded = await products.load(item.product_id for item in batch.items)
        held = await _frozen(conn, batch, now)
        ids = [item.product_id for item in batch.items]
        repaired = await admin_repo.repaired_sequences(conn, ids, REPAIR_LIMIT)
        by_hand = await admin_repo.repairs_done_by_hand(conn, ids)
        outcomes = []
        for item in batch.items:  # in order: a product asked twice sees its first repair
            # (`_one` adds each repair it sends to `repaired`)
            outcomes.append(await _one(ctx, conn, loaded.get(item.product_id), item, by, now,
                                       held.get(item.product_id), repaired,
                                       by_hand.get(item.product_id, 0)))
        await products.save(loaded.values())
    return ChainRepairResults(items=tuple(outcomes))


async def _frozen(conn: AsyncConnection, batch: ChainRepairBatch,
                  now: datetime) -> dict[str, Freeze]:
    """The freeze in force now over each lost block of the batch (none: absent)."""
    blocks = [i.product_id for i in batch.items if i.desired is ProvisioningAction.SUSPEND]
    freezes = [f for f in await freeze_sql.open_freezes(conn) if f.active(now)] if blocks else []
    if not freezes:
        return {}
    found = {}
    for product_id, facts in (await freeze_sql.covered(conn, blocks)).items():
        freeze = next((f for f in freezes if f.covers(facts)), None)
        if freeze is not None:
            found[product_id] = freeze
    return found


async def _one(ctx: CreditContext, conn: AsyncConnection, product: ProductCredit | None,
               item: ChainRepairRequest, by: str, now: datetime,
               freeze: Freeze | None, repaired: dict[str, list[int]],
               since: int) -> ChainRepair:
    why = ("unknown to credit-control" if product is None
           else product.repair_refusal(item.desired, item.sequence, item.gateway_sequence,
                                       now))
    if why is None and freeze is not None:
        why = (f"frozen by {freeze.freeze_id} until {freeze.until.isoformat()}: no one is cut "
               "off while it is in force; repaired by a run after it ends")
    if why is None and product is not None:
        why = product.repairs_exhausted(repaired.get(product.product_id, []), since)
        if why is not None:
            why = (f"{why}: work order "
                   f"{await _leave_for_person(ctx, conn, product, item, by, now)}")
    command = product.sync_command(now) if product is not None and why is None else None
    if product is None or command is None:
        return ChainRepair(product_id=item.product_id, outcome=RepairOutcome.REFUSED,
                           action=item.desired, detail=why or "nothing to send",
                           work_order_id=product.pending_work_order_id if product else None)
    await publish(ctx, conn, product.product_id, command)
    await admin_repo.audit(conn, now, by, "chain_repair", product.product_id, "repair",
                           item.model_dump(mode="json"), _sent(command))
    repaired.setdefault(product.product_id, []).insert(0, command.sequence)
    return ChainRepair(
        product_id=item.product_id, outcome=RepairOutcome.REPAIRED, action=command.action,
        command_id=command.command_id, sequence=command.sequence,
        detail=(f"{command.action.value} sent again as sequence {command.sequence} "
                f"(the gateway {'blocked' if item.gateway_blocked else 'open'} at "
                f"sequence {item.gateway_sequence})"))


async def _leave_for_person(ctx: CreditContext, conn: AsyncConnection, product: ProductCredit,
                            item: ChainRepairRequest, by: str, now: datetime) -> str:
    """The repair work order of a product whose repairs reached the limit (docs/gateway.md,
    Repair): a person is to make the gateway hold the settled state; the product waits for
    it (later requests are refused for it), audited."""
    order = product.repair_work_order(now)
    wo_id = await open_work_order(
        ctx, conn, product, order.action, order.decision_id, order.reason, order.at,
        key="repair", kind=WorkOrderKind.REPAIR, sequence=product.command_seq)
    product.escalated(wo_id)
    await admin_repo.audit(conn, now, by, "work_order", wo_id, "open",
                           item.model_dump(mode="json"), {
                               "kind": WorkOrderKind.REPAIR.value,
                               "product_id": product.product_id,
                               "action": order.action.value,
                               "sequence": product.command_seq, "reason": order.reason})
    return wo_id


def _sent(command: ProvisioningCommand) -> dict[str, object]:
    return {"command_id": command.command_id, "action": command.action.value,
            "sequence": command.sequence, "decision_id": command.decision_id}
