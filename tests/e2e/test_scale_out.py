"""Scale-out on Kafka consumer groups: three credit-control and three notifier instances share
the partitions; one of each is SIGKILLed mid-flow; the survivors take its partitions over and
nothing is lost or doubled.

The session's credit-control and notifier are stopped for the test and replaced by three
instances each (the first on the session's ports, so the other fixtures' clients still reach
them); they are started again at the end. The notifiers here send at any hour and reclaim a
dead sender's claims after 5 s, so the test does not depend on the wall clock.
"""

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts import BALANCE_TOPIC, DECISIONS_TOPIC, RESULTS_TOPIC
from common.testing.groups import Member, group_lag, group_members
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack

from .accounts import APPLIED, PUBLISHED, Group, count_for, open_accounts
from .accounts import post as post_created

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
INSTANCES = 3
ACCOUNTS = 48
CHARGE_FEN = 10_000
post = functools.partial(post_created, accept=(200, 201))
SCALE = Group("S", "扩容测试集团", "low", manager_phone="13900000002",
              contact_phone="13800000002", manager_name="钱经理")
PARTIAL_FEN = 1_000
PARTIALS = 3  # partial payments per account: balance events that decide nothing
TOKEN = "test-token"
GROUP_TOPICS = {"credit-control": [BALANCE_TOPIC, RESULTS_TOPIC], "notifier": [DECISIONS_TOPIC]}
NOTIFIER_ENV = (("NOTIFIER_CUSTOMER_SENDING_HOURS", "00:00-24:00"),
                ("NOTIFIER_SEND_CLAIM_TIMEOUT_S", "5"))


def instance_specs(session: ServiceProcesses) -> list[ServiceSpec]:
    """credit-control-0..2 and notifier-0..2: same code, database, Kafka and group; only the
    HTTP port differs (instance 0 takes the session's port)."""
    specs = []
    for service, extra in (("credit-control", ()), ("notifier", NOTIFIER_ENV)):
        base = session.specs[service]
        specs += [dataclasses.replace(base, name=f"{service}-{i}", port=base.port + 10 * i,
                                      extra_env=(*base.extra_env, *extra))
                  for i in range(INSTANCES)]
    return specs


@pytest.fixture
async def instances(services: ServiceProcesses, stack: Stack) -> AsyncIterator[ServiceProcesses]:
    services.stop("credit-control")
    services.stop("notifier")
    logs = ROOT / "test-artifacts" / f"logs-scale-out-{services.specs['notifier'].port}"
    mine = ServiceProcesses(instance_specs(services), stack, logs, TOKEN)
    try:
        mine.start_all()
        yield mine
    finally:
        mine.stop_all()
        for name in ("credit-control", "notifier"):
            services.start(name)
        for name in ("credit-control", "notifier"):
            services.wait_ready(name)


async def pay(billing: httpx.AsyncClient, accounts: list[str], year: int, n: int,
              amount: int) -> None:
    for account in accounts:
        await post(billing, "/v1/payments", {
            "payment_id": f"PAY{account}-{n}", "account_id": account, "amount_fen": amount,
            "paid_at": f"{year}-07-{12 + n:02d}T10:00:00+08:00"})


DECISIONS_OUT = ("SELECT count(*) FROM credit.outbox_messages WHERE key = ANY(:a) "
                 "AND topic = 'credit.decisions.v1'")
DECISIONS_IN = ("SELECT count(*) FROM notifier.inbox i JOIN credit.outbox_messages o "
                "ON o.event_id = i.event_id WHERE i.consumer = 'notifier' AND o.key = ANY(:a)")
SENT = ("SELECT count(*) FROM notifier.messages WHERE account_id = ANY(:a) "
        "AND status IN ('submitted', 'delivered')")


async def wait_members(stack: Stack, group: str, n: int) -> list[Member]:
    async def probe() -> tuple[str, list[Member]]:
        return await group_members(stack.kafka_bootstrap, group)

    _state, members = await eventually(
        probe, lambda r: r[0] == "Stable" and len(r[1]) == n
        and all(m.partitions for m in r[1]), timeout=90, interval=1,
        what=f"{group}: {n} members, each with partitions")
    return members


async def drained(stack: Stack, db: AsyncEngine, accounts: list[str], decisions: int) -> None:
    """Every balance event applied, every decision consumed and sent, no lag in either
    group."""
    published = await count_for(db, PUBLISHED, accounts)
    await eventually(lambda: count_for(db, APPLIED, accounts), lambda n: n == published,
                     timeout=120, what="every balance event applied by credit-control")
    await eventually(lambda: count_for(db, DECISIONS_OUT, accounts), lambda n: n >= decisions,
                     timeout=60, what="every decision in credit-control's outbox")
    out = await count_for(db, DECISIONS_OUT, accounts)
    await eventually(lambda: count_for(db, DECISIONS_IN, accounts), lambda n: n == out,
                     timeout=120, what="every decision event consumed by the notifiers")
    for group, topics in GROUP_TOPICS.items():
        async def lag(g: str = group, t: list[str] = topics) -> int:
            return sum((await group_lag(stack.kafka_bootstrap, g, t)).values())
        await eventually(lag, lambda n: n == 0, timeout=60, interval=1, what=f"{group} lag 0")


async def test_three_instances_share_partitions_and_survive_a_kill(
    instances: ServiceProcesses, clients: dict[str, httpx.AsyncClient], stack: Stack,
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    year, billing = test_year + 10, clients["billing-events"]  # +10: conftest's share-out
    for group in GROUP_TOPICS:
        members = await wait_members(stack, group, INSTANCES)
        print(f"\n{group}: " + "; ".join(
            f"{m.member_id[-8:]} {sorted(f'{p.topic}:{p.partition}' for p in m.partitions)}"
            for m in members))
        owners = {tp: m.member_id for m in members for tp in m.partitions}
        assert len(owners) == sum(len(m.partitions) for m in members)  # no partition twice

    accounts = await open_accounts(billing, SCALE, uid, f"{year}-06", ACCOUNTS, CHARGE_FEN)
    await post(billing, "/v1/bill-runs", {"bill_run_id": f"BRS{uid}", "bill_month": f"{year}-06",
                                          "as_of": f"{year}-07-02T09:00:00+08:00"})
    payer = asyncio.create_task(_partials(billing, accounts, year))
    # Kill one of each while the stream is being applied and bill notices are being sent.
    total = ACCOUNTS * (1 + 1 + PARTIALS)  # charge, bill run, partial payments
    at_kill = await eventually(lambda: count_for(db, APPLIED, accounts), lambda n: n >= total // 3,
                               timeout=90, interval=0.05, what="a third of the stream applied")
    instances.kill("credit-control-1")
    instances.kill("notifier-1")
    assert at_kill < total, "the kill came too late to prove anything"
    killed_at = time.monotonic()
    await payer
    for group in GROUP_TOPICS:  # the survivors hold every partition between them
        survivors = await wait_members(stack, group, INSTANCES - 1)
        print(f"{group} after the kill ({time.monotonic() - killed_at:.1f} s): " + "; ".join(
            f"{m.member_id[-8:]} {len(m.partitions)} partitions" for m in survivors))
    await drained(stack, db, accounts, ACCOUNTS)
    print(f"killed at {at_kill}/{total} balance events applied; all applied and sent "
          f"{time.monotonic() - killed_at:.1f} s after the kill")

    # A sweep (warnings) and the rest of the money, through the two survivors of each.
    await post(clients["credit-control"], "/v1/sweeps", {
        "sweep_id": f"SS{uid}", "as_of": f"{year}-07-10T20:00:00+08:00"})
    await pay(billing, accounts, year, PARTIALS, CHARGE_FEN - PARTIALS * PARTIAL_FEN)
    await drained(stack, db, accounts, 3 * ACCOUNTS)
    await eventually(lambda: count_for(db, SENT, accounts), lambda n: n >= 2 * ACCOUNTS,
                     timeout=120, what="every SMS submitted")
    await assert_once_each(db, accounts)


async def _partials(billing: httpx.AsyncClient, accounts: list[str], year: int) -> None:
    for n in range(PARTIALS):
        await pay(billing, accounts, year, n, PARTIAL_FEN)


async def assert_once_each(db: AsyncEngine, accounts: list[str]) -> None:
    async with db.connect() as conn:
        decided = (await conn.execute(text(
            "SELECT decision, count(*), count(DISTINCT account_id) FROM credit.decisions "
            "WHERE account_id = ANY(:a) GROUP BY decision ORDER BY decision"),
            {"a": accounts})).all()
        published = (await conn.execute(text(
            "SELECT payload::jsonb #>> '{payload,decision}' AS d, count(*) "
            "FROM credit.outbox_messages "
            "WHERE event_type = 'credit.decision_made' AND key = ANY(:a) GROUP BY d ORDER BY d"),
            {"a": accounts})).all()
        messages = (await conn.execute(text(
            "SELECT template, status, count(*), count(DISTINCT (source_id, recipient, template)) "
            "FROM notifier.messages WHERE account_id = ANY(:a) GROUP BY template, status "
            "ORDER BY template, status"), {"a": accounts})).all()
        at_smsc = (await conn.execute(text(
            "SELECT count(*), count(DISTINCT s.client_ref), coalesce(sum(s.submits), 0) "
            "FROM notifier.smsc_received s JOIN notifier.messages m "
            "ON m.message_id = s.client_ref WHERE m.account_id = ANY(:a)"), {"a": accounts})).one()
    n = ACCOUNTS
    assert [tuple(r) for r in decided] == [
        ("arrears_cleared", n, n), ("bill_notice", n, n), ("warning", n, n)]
    assert [tuple(r) for r in published] == [("arrears_cleared", n), ("bill_notice", n),
                                             ("warning", n)]
    by_template = {t: 0 for t, *_ in messages}
    for template, status, count, distinct in messages:
        assert count == distinct, f"{template}: the same notice twice"
        assert status in ("submitted", "delivered"), f"{count} {template} still {status}"
        by_template[template] += count
    assert by_template == {"bill_notice": n, "warning_1": n}
    rows, refs, submits = at_smsc
    # One SMSC message per notice: a resubmission after a crash is deduped on client_ref.
    assert rows == refs == 2 * n
    print(f"SMSC: {rows} messages for {2 * n} notices, {submits} submits in all")
