"""Through real Kafka: credit-control's deduction decisions are applied once per decision_id
and always answered; and a crash between the database commit and the Kafka send still
publishes the balance event exactly once (outbox)."""

from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts import BALANCE_TOPIC, DECISIONS_TOPIC, CreditDecisionMade, CreditStateChanged
from common.contracts.credit_control import CreditState, DecisionType, NoticeContext
from common.contracts.snapshots import CustomerSnapshot, Person, ProductSnapshot
from common.envelope import to_bytes, wrap
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack

from .helpers import charge_and_close, end_offsets, events, messages_since, open_account, post

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def decision(ids: dict[str, str], decision_id: str, kind: DecisionType,
             amount_fen: int | None) -> CreditDecisionMade:
    person = Person(name="经理", phone="13900000000")
    return CreditDecisionMade(
        decision_id=decision_id, account_id=ids["account"], product_id=ids["product"],
        decision=kind, rule_id="ADC-11", reason="15th of the 2nd month",
        state_before=CreditState.WARNED, state_after=CreditState.WARNED,
        as_of=datetime(2201, 1, 15, 1, tzinfo=UTC), amount_fen=amount_fen,
        context=NoticeContext(
            customer=CustomerSnapshot(customer_id=ids["customer"], name="集团", tier="high",
                                      account_manager=person),
            product=ProductSnapshot(product_id=ids["product"], cpno="CP", name="企信通",
                                    family="ADC"),
            amount_due_fen=amount_fen or 0, as_of_date=datetime(2201, 1, 15).date()))


async def deductions_of(db: AsyncEngine, account: str) -> list[tuple[str, int, int]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT decision_id, requested_fen, collected_fen FROM billing.deductions "
            "WHERE account_id = :a ORDER BY created_at"), {"a": account})
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_deduction_is_applied_once_per_decision_and_always_answered(
    clients: dict[str, httpx.AsyncClient], stack: Stack, db: AsyncEngine, uid: str,
    test_year: int,
) -> None:
    billing = clients["billing-events"]
    ids = await open_account(billing, uid, tier="high")
    await charge_and_close(billing, ids, f"{test_year}-11", 30_000, uid)
    await post(billing, "/v1/deposits", {"deposit_id": f"D{uid}", "account_id": ids["account"],
                                         "amount_fen": 20_000})
    first = decision(ids, f"DEC1{uid}", DecisionType.DEDUCTION, 25_000)
    envelope = wrap(first, key=ids["account"], source="credit-control",
                    occurred_at=datetime.now(UTC))
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        for payload in (
            to_bytes(envelope),  # the decision
            to_bytes(envelope),  # redelivered as is (inbox)
            to_bytes(wrap(first, key=ids["account"], source="credit-control",  # republished
                          occurred_at=datetime.now(UTC))),  # under a new event id
            to_bytes(wrap(decision(ids, f"W{uid}", DecisionType.WARNING, None),
                          key=ids["account"], source="credit-control",
                          occurred_at=datetime.now(UTC))),  # not billing's business
            to_bytes(wrap(decision(ids, f"DEC2{uid}", DecisionType.DEDUCTION, 25_000),
                          key=ids["account"], source="credit-control",
                          occurred_at=datetime.now(UTC))),  # the deposit is empty now
        ):
            await producer.send_and_wait(DECISIONS_TOPIC, key=ids["account"].encode(),
                                         value=payload)
    finally:
        await producer.stop()
    applied = await eventually(lambda: deductions_of(db, ids["account"]),
                               lambda rows: len(rows) == 2, what="two deductions applied")
    assert applied == [(f"DEC1{uid}", 25_000, 20_000), (f"DEC2{uid}", 25_000, 0)]
    answers = [e for e in await events(db, ids["account"]) if e["cause"] == "deduction"]
    assert [(e["deduction"]["decision_id"], e["deduction"]["collected_fen"], e["deposit_fen"],
             e["amount_due_fen"]) for e in answers] == [
        (f"DEC1{uid}", 20_000, 0, 10_000), (f"DEC2{uid}", 0, 0, 10_000)]
    # Which product's arrears the collected money paid: the deduction notice quotes that.
    assert [e["deduction"]["products"] for e in answers] == [
        [{"product_id": ids["product"], "collected_fen": 20_000}], []]
    view = (await billing.get(f"/v1/accounts/{ids['account']}")).json()
    assert (view["deposit_fen"], view["amount_due_fen"]) == (0, 10_000)


async def test_crash_between_commit_and_send_publishes_exactly_once(
    processes: ServiceProcesses, stack: Stack, db: AsyncEngine, uid: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = processes.specs["billing-events"]
    port = spec.port + 10
    crashing = ServiceProcesses([ServiceSpec(spec.name, spec.module, spec.env_prefix, port)],
                                stack, processes._log_dir, "test-token")
    monkeypatch.setenv("BILLING_CONSUME_DECISIONS", "false")
    monkeypatch.setenv("BILLING_RELAY_ENABLED", "false")
    crashing.start(spec.name)
    try:
        crashing.wait_ready(spec.name)
        since = await end_offsets(stack.kafka_bootstrap, BALANCE_TOPIC)
        headers = {"Authorization": "Bearer test-token"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers=headers) as api:
            ids = await open_account(api, uid)
            await post(api, "/v1/payments", {"payment_id": f"P{uid}",
                                             "account_id": ids["account"], "amount_fen": 4_321})
    except BaseException:
        crashing.stop_all()
        raise
    crashing.kill(spec.name)  # SIGKILL right after the commit; this process never sent it
    async with db.connect() as conn:
        # the product's master_data event, then the payment's: both committed, neither sent
        event_ids = [str(e) for e in (await conn.execute(text(
            "SELECT event_id FROM billing.outbox WHERE key = :a ORDER BY id"),
            {"a": ids["account"]})).scalars()]
    monkeypatch.setenv("BILLING_RELAY_ENABLED", "true")
    crashing.start(spec.name)
    try:
        crashing.wait_ready(spec.name)
        await eventually(lambda: _published(db, ids["account"]), bool, what="relay sent it")
        sent = await messages_since(stack.kafka_bootstrap, BALANCE_TOPIC, since, ids["account"])
    finally:
        crashing.stop_all()
    assert [m["event_id"] for m in sent] == event_ids
    assert [m["payload"]["cause"] for m in sent] == ["master_data", "payment"]
    assert sent[-1]["payload"]["balance_fen"] == 4_321


async def _published(db: AsyncEngine, account: str) -> bool:
    async with db.connect() as conn:
        return bool(await conn.scalar(text(
            "SELECT bool_and(p.id IS NULL) FROM billing.outbox o "
            "LEFT JOIN billing.outbox_pending p USING (id) WHERE o.key = :a"),
            {"a": account}))


async def test_a_suspended_products_family_does_not_change_until_it_is_restored(
    clients: dict[str, httpx.AsyncClient], stack: Stack, db: AsyncEngine, uid: str,
) -> None:
    """A MAS product suspended through the chain and moved to ADC could never be restored by
    it (the gateway serves MAS and SMS-direct only; credit-control's rules are per family):
    while credit-control's decisions say it is under a sanction, a family change is 409 and
    changes nothing; its name may change; once restored the family may change too."""
    billing = clients["billing-events"]
    ids = await open_account(billing, uid, family="MAS", vendor="huawei")
    person = Person(name="经理", phone="13900000000")
    context = NoticeContext(
        customer=CustomerSnapshot(customer_id=ids["customer"], name="集团", tier="mid",
                                  account_manager=person),
        product=ProductSnapshot(product_id=ids["product"], cpno="CP", name="企信通",
                                family="MAS", vendor="huawei"),
        amount_due_fen=100, as_of_date=datetime(2201, 1, 31).date())

    def made(n: int, kind: DecisionType, before: CreditState,
             after: CreditState) -> CreditDecisionMade:
        return CreditDecisionMade(
            decision_id=f"S{n}{uid}", account_id=ids["account"], product_id=ids["product"],
            decision=kind, rule_id="MAS-X", reason="test", state_before=before,
            state_after=after, as_of=datetime(2201, 1, 31, n, tzinfo=UTC), context=context)

    def changed(n: int, before: CreditState, after: CreditState) -> CreditStateChanged:
        return CreditStateChanged(
            decision_id=f"S{n}{uid}", account_id=ids["account"], product_id=ids["product"],
            state_before=before, state_after=after,
            as_of=datetime(2201, 1, 31, n, 30, tzinfo=UTC), context=context)

    async def send(*payloads: CreditDecisionMade | CreditStateChanged) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
        await producer.start()
        try:
            for p in payloads:
                await producer.send_and_wait(DECISIONS_TOPIC, key=ids["account"].encode(),
                                             value=to_bytes(wrap(
                                                 p, key=ids["account"], source="credit-control",
                                                 occurred_at=datetime.now(UTC))))
        finally:
            await producer.stop()

    S = CreditState
    await send(made(1, DecisionType.SUSPEND, S.SUSPENSION_WARNED, S.SUSPEND_REQUESTED),
               changed(1, S.SUSPEND_REQUESTED, S.SUSPENDED))
    # Heard first: a change asked before billing's consumer has read the suspension is
    # allowed (billing knows nothing of it yet), and it would change the family at once.
    await eventually(lambda: _sanction(db, ids["product"]), lambda s: s == "suspended",
                     what="billing heard the suspension")
    to_adc = {"name": "企信通", "family": "ADC"}
    path = f"/v1/products/{ids['product']}"
    refused = await billing.put(path, json=to_adc)
    assert refused.status_code == 409 and refused.json().get("state") == "suspended"
    assert refused.json()["family"] == "MAS" and "until it is restored" in refused.json()["message"]
    before = await events(db, ids["account"])
    renamed = await billing.put(path, json={"name": "企信通MAS", "family": "MAS",
                                            "vendor": "huawei"})
    assert renamed.status_code == 200 and renamed.json()["changed"] is True
    assert len(await events(db, ids["account"])) == len(before) + 1  # the rename only
    await send(made(2, DecisionType.RESTORE, S.SUSPENDED, S.RESTORE_REQUESTED))
    await eventually(lambda: billing.put(path, json=to_adc),
                     lambda r: r.status_code == 409 and r.json()["state"] == "restore_requested",
                     what="still refused with the restore in flight")
    await send(changed(2, S.RESTORE_REQUESTED, S.NORMAL))
    moved = await eventually(lambda: billing.put(path, json=to_adc),
                             lambda r: r.status_code == 200, what="allowed once restored")
    assert moved.json()["family"] == "ADC" and moved.json()["changed"] is True


async def _sanction(db: AsyncEngine, product: str) -> str | None:
    async with db.connect() as conn:
        return await conn.scalar(text(
            "SELECT state FROM billing.product_sanctions WHERE product_id = :p"),
            {"p": product})
