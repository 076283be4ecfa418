"""The chain's use cases in this process against the real PostgreSQL: a consumer batch and
a stage worker round as the statements they are (one to lock and read, one to write), with
commands of every vendor at different stages in one round, a round that dies half-way, and
a batch that waited for a product's lock while someone else changed it.

Times are in year 2300 (a FixedClock): the gateway-adapter process a test session may be
running beside these tests never finds these steps due, only these tests' rounds do."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import ProductFamily
from common.envelope import parse, to_bytes, wrap
from common.outbox import Outbox
from gateway_adapter.adapters import chain_writes, tables
from gateway_adapter.domain.chain import Attempt
from gateway_adapter.domain.faults import Faults
from gateway_adapter.domain.intake import CommandState
from gateway_adapter.entrypoints.consumer import CONTRACTS
from gateway_adapter.service_layer import accept, worker
from gateway_adapter.service_layer.context import GatewayContext

pytestmark = [pytest.mark.integration]

T0 = datetime(2300, 1, 15, 4, 0, tzinfo=UTC)
STEP = timedelta(seconds=1)
# Each stage takes exactly a second: nothing is due at once, every step is the worker's.
SLOW = Faults.model_validate({s: {"latency": {"min_ms": 1000}}
                              for s in ("boss", "emos", "gateway")})
SUSPEND = ProvisioningAction.SUSPEND
MIXED = [("huawei", ProductFamily.MAS, "G1"), ("jiaxun", ProductFamily.MAS, "G1"),
         ("ruoya", ProductFamily.MAS, "G1"), ("ruoya", ProductFamily.MAS, None),
         (None, ProductFamily.SMS_DIRECT, "G1"), ("acme", ProductFamily.MAS, "G1")]


def context(db: AsyncEngine, clock: FixedClock, faults: Faults = SLOW) -> GatewayContext:
    return GatewayContext(db, Outbox(tables.outbox), clock, default_faults=faults,
                          worker_batch=10_000)


def command(product: str, sequence: int, vendor: str | None = "huawei",
            family: ProductFamily = ProductFamily.MAS, customer: str | None = "G1",
            attempt: int = 1) -> ProvisioningCommand:
    return ProvisioningCommand(
        command_id=f"cmd-{product}-{sequence}", decision_id=f"d-{product}", product_id=product,
        account_id=f"A{product}", cpno=f"CP{product}", family=family, vendor=vendor,
        action=SUSPEND, sequence=sequence, requested_at=T0, attempt=attempt,
        customer_id=customer)


async def consume(ctx: GatewayContext, *cmds: ProvisioningCommand) -> None:
    """One consumer batch, the envelopes as they come off Kafka."""
    items: list[Any] = [parse(to_bytes(wrap(c, key=c.product_id, source="test",
                                            occurred_at=T0)), CONTRACTS) for c in cmds]
    async with ctx.engine.begin() as conn:
        await accept.accept_commands(ctx, conn, items)


async def results(db: AsyncEngine, prefix: str) -> dict[str, list[tuple[str, str, bool]]]:
    """The outbox's results per command, in id order: (stage, outcome, final)."""
    async with db.connect() as conn:
        rows = await conn.execute(text(  # by message: a row holds several (outbox.packed)
            "SELECT payload FROM gateway.outbox_messages WHERE key LIKE :p "
            "ORDER BY id, position"), {"p": f"{prefix}%"})
        found: dict[str, list[tuple[str, str, bool]]] = {}
        for (payload,) in rows:
            r = orjson.loads(payload)["payload"]
            found.setdefault(r["command_id"], []).append((r["stage"], r["outcome"], r["final"]))
        return found


async def steps(db: AsyncEngine, prefix: str) -> dict[str, tuple[str, str | None]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT product_id, step, outcome FROM gateway.attempts WHERE product_id LIKE :p"),
            {"p": f"{prefix}%"})
        return {r.product_id: (r.step, r.outcome) for r in rows}


@pytest.fixture
def prefix() -> str:
    return f"gwr{uuid.uuid4().hex[:10]}-"


async def test_one_round_moves_every_vendor_at_every_stage(
    db: AsyncEngine, prefix: str
) -> None:
    clock = FixedClock(T0)
    ctx = context(db, clock)
    early = [command(f"{prefix}e{i}", 1, v, f, c) for i, (v, f, c) in enumerate(MIXED)]
    late = [command(f"{prefix}l{i}", 1, v, f, c) for i, (v, f, c) in enumerate(MIXED)]
    await consume(ctx, *early)
    assert await results(db, prefix) == {}  # nothing due at once: every step is a second
    clock.set(T0 + STEP)
    await consume(ctx, *late)
    # One round at T0+2s: the early batch at its EMOS step, the late one at BOSS.
    r = await worker.advance_due(ctx, T0 + 2 * STEP)
    assert r.claimed >= 2 * len(MIXED) and r.skipped == 0
    at = await steps(db, prefix)
    assert {at[c.product_id] for c in early} == {("gateway", None)}
    assert {at[c.product_id] for c in late} == {("emos", None)}
    assert (await worker.advance_due(ctx, T0 + 2 * STEP)).claimed == 0  # nothing more due

    await worker.advance_all_due(ctx, T0 + 10 * STEP)
    done = await results(db, prefix)
    boss, emos = ("boss", "applied", False), ("emos", "applied", False)
    for group in (early, late):
        huawei, jiaxun, ruoya, no_ec, sms, acme = (done[c.command_id] for c in group)
        assert huawei == sms == jiaxun == ruoya == [boss, emos, ("gateway", "applied", True)]
        assert no_ec == acme == [boss, emos, ("gateway", "failed", True)]
    at = await steps(db, prefix)
    assert at[early[1].product_id] == ("gateway_confirm", "applied")  # jiaxun: ack, confirm
    async with db.connect() as conn:
        blocked = dict((await conn.execute(text(
            "SELECT product_id, gateway_blocked FROM gateway.chain_products "
            "WHERE product_id LIKE :p"), {"p": f"{prefix}%"})).all())
        orders = dict((await conn.execute(text(
            "SELECT command_id, status FROM gateway.emos_orders WHERE product_id LIKE :p"),
            {"p": f"{prefix}%"})).all())
        applied = dict((await conn.execute(text(
            "SELECT command_id, applied_attempt FROM gateway.commands "
            "WHERE product_id LIKE :p"), {"p": f"{prefix}%"})).all())
    for group in (early, late):
        assert [blocked[c.product_id] for c in group] == [True, True, True, False, True, False]
        assert [orders[c.command_id] for c in group] == [
            "closed", "closed", "closed", "failed", "closed", "failed"]
        assert [applied[c.command_id] for c in group] == [1, 1, 1, None, 1, None]


async def test_a_round_that_dies_half_way_leaves_nothing_and_the_next_one_does_it(
    db: AsyncEngine, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(db, FixedClock(T0))
    cmds = [command(f"{prefix}{i}", 1, v, f, c) for i, (v, f, c) in enumerate(MIXED)]
    await consume(ctx, *cmds)
    before = await steps(db, prefix)

    async def crash(self: chain_writes.Writes, conn: Any) -> None:
        raise ConnectionResetError("the worker's process died before its writes")

    with monkeypatch.context() as m:
        m.setattr(chain_writes.Writes, "run", crash)
        with pytest.raises(ConnectionResetError):
            await worker.advance_due(ctx, T0 + STEP)
    assert await steps(db, prefix) == before == {c.product_id: ("boss", None) for c in cmds}
    assert await results(db, prefix) == {}

    await worker.advance_all_due(ctx, T0 + 10 * STEP)
    done = await results(db, prefix)
    assert [len(done[c.command_id]) for c in cmds] == [3] * len(cmds)  # each stage once
    # The consumer's batch again (a redelivery after a crash before the offsets were
    # committed): the attempts table answers, nothing moves, nothing is published.
    await consume(ctx, *cmds)
    assert await results(db, prefix) == done


async def test_a_batch_that_waited_for_a_lock_reads_what_changed_meanwhile(
    db: AsyncEngine, prefix: str
) -> None:
    """The consumer locks and reads in one statement, from the snapshot it started with.
    Here another transaction holds the product and puts an attempt in flight for it while
    the batch waits: the batch must still see that attempt, and supersede it."""
    ctx = context(db, FixedClock(T0), Faults())
    product = f"{prefix}p"
    await consume(ctx, command(product, 1))
    other = msgspec.structs.replace(command(product, 5), command_id=f"cmd-{product}-other")
    async with db.connect() as holder:
        async with holder.begin():
            await holder.execute(text(
                "SELECT 1 FROM gateway.chain_products WHERE product_id = :p FOR UPDATE"),
                {"p": product})
            newer = asyncio.create_task(consume(ctx, command(product, 6)))
            await asyncio.sleep(0.5)  # the batch is waiting for the product's lock
            assert not newer.done()
            await _put_in_flight(holder, other, T0 + timedelta(days=1))
        await asyncio.wait_for(newer, timeout=30)
    done = await results(db, prefix)
    assert done[other.command_id] == [("boss", "superseded", True)]
    assert done[f"cmd-{product}-6"][-1] == ("gateway", "applied", True)
    async with db.connect() as conn:
        last = await conn.scalar(text(
            "SELECT last_sequence FROM gateway.chain_products WHERE product_id = :p"),
            {"p": product})
    assert last == 6


async def test_a_batchs_results_are_16_to_an_outbox_row_each_products_in_stage_order(
    db: AsyncEngine, prefix: str
) -> None:
    """With the chain's delays at 0 a command runs its three stages in the batch's own
    transaction: the batch's results go into the outbox 16 to a row (common.outbox.packed),
    each with its product's key, each product's stages in order."""
    ctx = context(db, FixedClock(T0), Faults())
    products = [f"{prefix}{c}" for c in "abcdefg"]
    await consume(ctx, *(command(p, 1) for p in products))
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT m.id, m.key, m.payload, o.key AS row_key FROM gateway.outbox_messages m "
            "JOIN gateway.outbox o USING (id) WHERE m.key LIKE :p ORDER BY m.id, m.position"),
            {"p": f"{prefix}%"})).all()
    assert len(rows) == 21 and len({r.id for r in rows}) == 2  # 16 and 5
    assert {r.row_key for r in rows} == {""}  # several products a row: each message's key
    assert [(r.key, orjson.loads(r.payload)["payload"]["stage"]) for r in rows] == [
        (p, stage) for p in products for stage in ("boss", "emos", "gateway")]
    assert all(orjson.loads(r.payload)["key"] == r.key for r in rows)


async def _put_in_flight(conn: Any, c: ProvisioningCommand, due: datetime) -> None:
    """What another gateway process would have written: the command at its BOSS step, due
    later, and the product's newest sequence (every writer saves the products it holds)."""
    w = chain_writes.Writes()
    chain_writes.insert_attempts(w, [Attempt(
        command_id=c.command_id, attempt=1, product_id=c.product_id,
        customer_id=c.customer_id, cpno=c.cpno, family=c.family.value, vendor=c.vendor,
        action=c.action, sequence=c.sequence, received_at=T0, due_at=due)])
    chain_writes.save_command_states(w, [CommandState(
        c.command_id, c.product_id, c.action, c.sequence, T0, latest_attempt=1)])
    await w.run(conn)
    await conn.execute(text(
        "UPDATE gateway.chain_products SET last_sequence = :s WHERE product_id = :p"),
        {"s": c.sequence, "p": c.product_id})
