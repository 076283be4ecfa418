"""The balance batch's hints (balance_sql.BatchHints): the products' upsert also says what the
batch's other reads would find (the rule table's version, open freezes, open promises of its
accounts, profiles or exemptions of its customers), and the store skips a read only when
its hint says there is nothing to find. Each answer must be the read's own: with nothing
there (the reads skipped) and with something there (the reads made, the rows found)."""

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import FixedClock
from common.contracts.billing import BalanceCause, BalanceChanged
from common.contracts.snapshots import ProductFamily, ProductSnapshot, Tier
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from credit_control.adapters import tables as t
from credit_control.admin.adapters import admin_repository
from credit_control.collections.adapters import promise_sql
from credit_control.credit.adapters import freeze_sql
from credit_control.credit.service_layer.balance_store import SqlBalanceStore
from credit_control.service_layer.context import CreditContext

from .helpers import Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration]

READS = ((admin_repository, "rule_version"), (admin_repository, "profiles_for"),
         (freeze_sql, "open_freezes"), (promise_sql, "open_promises"))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each of the reads the hints stand in for went to the database."""
    made: Counter[str] = Counter()

    def counted(name: str, read: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            made[name] += 1
            return await read(*args, **kwargs)
        return call

    for module, name in READS:
        monkeypatch.setattr(module, name, counted(name, getattr(module, name)))
    return made


def _event(lg: Ledger) -> tuple[BalanceChanged, ProductSnapshot]:
    event = lg.event(BalanceCause.CHARGE, at(date(2031, 6, 2)), [("2031-05", 500)]).payload
    assert isinstance(event, BalanceChanged)
    return event, lg.products[0]


async def _answers(store: SqlBalanceStore, conn: AsyncConnection,
                   event: BalanceChanged, product: ProductSnapshot) -> tuple[Any, Any]:
    """(the store's answers after the upsert, the reads' own answers)."""
    customers, accounts = [event.customer.customer_id], [event.account_id]
    await store.upsert_products([(event, product)])
    stored = ((await store.rule_table()).version, await store.profiles(customers),
              await store.open_freezes(), await store.open_promises(accounts))
    direct = (await admin_repository.rule_version(conn),
              await admin_repository.profiles_for(conn, customers),
              await freeze_sql.open_freezes(conn),
              await promise_sql.open_promises(conn, accounts))
    return stored, direct


async def test_the_hints_skip_only_the_reads_that_find_nothing(
        db: AsyncEngine, reads: Counter[str]) -> None:
    lg = ledger(new_uid(), "bh", ProductFamily.MAS, Tier.MID)
    event, product = _event(lg)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(at(date(2031, 6, 2))))
    async with db.connect() as conn:
        await ctx.rules.current(conn)  # the table cached, as in a running consumer
        open_freezes = len(await freeze_sql.open_freezes(conn))
    reads.clear()

    async with db.begin() as conn:  # nothing for this customer or account
        store = SqlBalanceStore(ctx, conn)
        stored, direct = await _answers(store, conn, event, product)
        assert stored == direct
        # The direct reads above count one each; the store's own made none (a freeze
        # another test left open is there to be read).
        assert reads == Counter({"rule_version": 1, "profiles_for": 1, "open_promises": 1,
                                 "open_freezes": 2 if open_freezes else 1})
        await conn.rollback()

    reads.clear()
    async with db.begin() as conn:  # a profile, an exemption, a promise and a freeze
        await _something_for(conn, lg)
        store = SqlBalanceStore(ctx, conn)
        stored, direct = await _answers(store, conn, event, product)
        assert stored == direct
        _, profiles, freezes, promises = stored
        customer = lg.customer.customer_id
        assert profiles[customer].star_level == 4 and profiles[customer].exemptions
        assert any(f.freeze_id == f"FZ{lg.account_id}" for f in freezes)
        assert [p.promise_id for p in promises] == [f"PR{lg.account_id}"]
        assert reads == Counter({"rule_version": 1, "profiles_for": 2, "open_promises": 2,
                                 "open_freezes": 2})
        await conn.rollback()  # nothing of it stays for the other tests


async def _something_for(conn: AsyncConnection, lg: Ledger) -> None:
    now = at(date(2031, 6, 1))
    k, a = lg.customer.customer_id, lg.account_id
    await conn.execute(text(
        "INSERT INTO credit.credit_profiles (customer_id, star_level, updated_by, updated_at) "
        "VALUES (:k, 4, 'test', :now)"), {"k": k, "now": now})
    await conn.execute(text(
        "INSERT INTO credit.exemptions (exemption_id, customer_id, kind, reason, approver, "
        "created_by, created_at) VALUES (:e, :k, 'red_list', '重点客户', '主管', 'test', :now)"),
        {"e": f"EX{a}", "k": k, "now": now})
    await conn.execute(text(
        "INSERT INTO credit.freezes (freeze_id, scope, value, covers_warnings, reason, "
        "approver, starts_at, until, created_by, created_at) VALUES (:f, 'customer', :k, "
        "false, '网络故障', '主管', :now, :until, 'test', :now)"),
        {"f": f"FZ{a}", "k": k, "now": now, "until": at(date(2031, 7, 1))})
    await conn.execute(text(
        "INSERT INTO credit.promises (promise_id, entry_id, account_id, customer_id, manager, "
        "status, promised_date, amount_fen, schedule, instalments, covered_through, "
        "baseline_fen, recorded_by, recorded_role, reason, recorded_at, recorded_on, "
        "created_at, request) VALUES (:p, :p, :a, :k, '王经理', 'open', :due, 500, "
        "CAST('[]' AS jsonb), false, '2031-05', 500, 'test', 'collector', '承诺付款', :now, "
        ":today, :now, CAST('{}' AS jsonb))"),
        {"p": f"PR{a}", "a": a, "k": k, "due": date(2031, 6, 20),
         "now": now, "today": date(2031, 6, 1)})
