"""Helpers for credit-control's integration tests: balance events onto Kafka as billing-events
would publish them, sweeps and work orders through the running service's API, and read-backs
of what credit-control decided (its explain endpoint and its outbox)."""

import calendar
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, business_date
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import Envelope, RawEnvelope, to_bytes, wrap
from common.kafka import Publisher
from common.testing.notices import notices_heard
from common.testing.polling import eventually

CHAIN = (ProductFamily.MAS, ProductFamily.SMS_DIRECT)
IN_FLIGHT = ("suspend_requested", "restore_requested")


def at(day: date, hour: int = 20) -> datetime:
    """A business moment (Asia/Shanghai) on `day`."""
    return datetime.combine(day, time(hour), BUSINESS_TZ)


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


@dataclass
class Ledger:
    """One billing account as billing-events would describe it: every event carries the next
    sequence, the customer and product snapshots, and what is still due per bill month."""

    account_id: str
    customer: CustomerSnapshot
    products: tuple[ProductSnapshot, ...]
    sequence: int = 0
    sent: list[Envelope[Any]] = field(default_factory=list)
    deposit_fen: int = 0  # what billing holds: a deduction takes at most this

    @property
    def product_id(self) -> str:
        return self.products[0].product_id

    @property
    def family(self) -> ProductFamily:
        return self.products[0].family

    def event(self, cause: BalanceCause, as_of: datetime, dues: Iterable[tuple[str, int]] = (),
              closed_bill_month: str | None = None) -> Envelope[Any]:
        self.sequence += 1
        owing = tuple(BillMonthDue(bill_month=m, amount_due_fen=f) for m, f in dues)
        amount_due = sum(d.amount_due_fen for d in owing)
        balance = BalanceChanged(
            account_id=self.account_id, sequence=self.sequence, cause=cause, as_of=as_of,
            balance_fen=-amount_due, amount_due_fen=amount_due, dues=owing,
            closed_bill_month=closed_bill_month, customer=self.customer, products=self.products,
            deposit_fen=self.deposit_fen)
        envelope = wrap(balance, key=self.account_id, source="test-billing",
                        occurred_at=datetime.now(UTC))
        self.sent.append(envelope)
        return envelope

    def bill_run(self, bill_month: str, amount_fen: int, as_of: datetime) -> Envelope[Any]:
        return self.event(BalanceCause.BILL_RUN, as_of, [(bill_month, amount_fen)], bill_month)

    def payment(self, as_of: datetime) -> Envelope[Any]:
        return self.event(BalanceCause.PAYMENT, as_of)


def ledger(uid: str, name: str, family: ProductFamily, tier: Tier,
           star_level: int | None = None, vendor: str | None = None) -> Ledger:
    """An account with one product, of its own group customer (so profiles and exemptions of
    one test touch nothing else)."""
    key = f"{name}{uid}"
    customer = CustomerSnapshot(
        customer_id=f"G{key}", name=f"测试集团{key}", tier=tier, star_level=star_level,
        account_manager=Person(name="王经理", phone="13900139000"),
        contacts=(Person(name="李联系人", phone="13800138000"),))
    if family is ProductFamily.MAS and vendor is None:
        vendor = "huawei"
    product = ProductSnapshot(product_id=f"P{key}", cpno=f"CP{key}", name=f"产品{name}",
                              family=family, vendor=vendor)
    return Ledger(f"A{key}", customer, (product,))


class CreditApi:
    """credit-control as staff and the tests see it: its HTTP API, its database, and balance
    events published to Kafka."""

    def __init__(self, client: httpx.AsyncClient, db: AsyncEngine, publisher: Publisher) -> None:
        self.http, self.db, self.publisher = client, db, publisher

    async def publish(self, *envelopes: Envelope[Any]) -> None:
        await self.publisher.send_many(
            (e.payload.topic, e.key.encode(), to_bytes(e)) for e in envelopes)

    async def deliver(self, *ledgers_and_envelopes: tuple[Ledger, Envelope[Any]]) -> None:
        """Publish and wait until credit-control applied each account's newest event."""
        await self.publish(*(e for _, e in ledgers_and_envelopes))
        await self.applied(*(lg for lg, _ in ledgers_and_envelopes))

    async def applied(self, *ledgers: Ledger) -> None:
        want = {lg.account_id: lg.sequence for lg in ledgers}

        async def seen() -> dict[str, int]:
            async with self.db.connect() as conn:
                rows = await conn.execute(text(
                    "SELECT account_id, sequence FROM credit.account_positions "
                    "WHERE account_id = ANY(:a)"), {"a": list(want)})
                return {a: int(s) for a, s in rows}

        await eventually(seen, lambda got: got == want, what=f"balance events applied {want}")

    async def sweep(self, day: date, sweep_id: str, hour: int = 20) -> dict[str, Any]:
        # The suspension warnings of an earlier sweep must reach the customer first.
        await notices_heard(self.db)
        r = await self.http.post("/v1/sweeps", json={"sweep_id": sweep_id,
                                                      "as_of": at(day, hour).isoformat()})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def credit(self, product_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/v1/products/{product_id}/credit")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def state(self, product_id: str) -> str:
        return str((await self.credit(product_id))["state"])

    async def settled(self, *ledgers: Ledger, timeout: float = 30) -> None:
        """Wait until no chain product has a command in flight (the gateway answered)."""
        chain = [lg.product_id for lg in ledgers if lg.family in CHAIN]

        async def states() -> list[str]:
            return [await self.state(p) for p in chain]

        await eventually(states, lambda s: not set(s) & set(IN_FLIGHT), timeout=timeout,
                         what=f"the chain answered for {chain}")

    async def work_orders(self, **filters: str) -> list[dict[str, Any]]:
        r = await self.http.get("/v1/work-orders", params=filters)
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()
        return found

    async def complete_work_orders(self, *ledgers: Ledger) -> list[dict[str, Any]]:
        """An operator takes and finishes every open work order of these manual products."""
        done = []
        for lg in ledgers:
            if lg.family is ProductFamily.WORK_ORDER:
                done += await self.finish_work_orders(lg.product_id)
        return done

    async def finish_work_orders(self, product_id: str) -> list[dict[str, Any]]:
        done = []
        for wo in await self.work_orders(product_id=product_id, status="created"):
            path = f"/v1/work-orders/{wo['work_order_id']}"
            r = await self.http.post(f"{path}/assign", json={
                "by": "集团账务管理员", "assignee": "operator-1", "role": "operator"})
            assert r.status_code == 200, r.text
            r = await self.http.post(f"{path}/done", json={
                "by": "operator-1", "note": f"{wo['action']} done on every platform"})
            assert r.status_code == 200, r.text
            done.append(r.json())
        return done

    async def decisions(self, product_id: str) -> list[tuple[str, int | None, date]]:
        """(decision, warning level, business date) in the order they were taken."""
        return [(d["decision"], d["warning_level"],
                 business_date(datetime.fromisoformat(d["as_of"])))
                for d in (await self.credit(product_id))["decisions"]]

    async def footprint(self, ledgers: Iterable[Ledger]) -> tuple[int, int, int]:
        """Decisions, outbox messages and work orders for these accounts and products."""
        keys = [k for lg in ledgers for k in (lg.account_id, lg.product_id)]
        async with self.db.connect() as conn:
            counts = []
            for sql in (
                "SELECT count(*) FROM credit.decisions WHERE product_id = ANY(:k)",
                "SELECT count(*) FROM credit.outbox_messages WHERE key = ANY(:k)",
                "SELECT count(*) FROM credit.work_orders WHERE product_id = ANY(:k)",
            ):
                counts.append(int(await conn.scalar(text(sql), {"k": keys}) or 0))
        return counts[0], counts[1], counts[2]

    async def outbox(self, key: str, topic: str) -> list[dict[str, Any]]:
        """The payloads credit-control wrote for `key` on `topic`, oldest first."""
        async with self.db.connect() as conn:
            rows = await conn.execute(text(
                "SELECT payload::jsonb -> 'payload' FROM credit.outbox_messages "
                "WHERE key = :k AND topic = :t ORDER BY id, position"), {"k": key, "t": topic})
            return [r[0] for r in rows]


async def fresh_year(db: AsyncEngine, test_year: int) -> int:
    """A year no decision was taken in yet, so its daily sweep ids (`auto-YYYY-MM-DD`) were
    never used: the database is shared by every test session."""
    async with db.connect() as conn:
        newest = await conn.scalar(text(
            "SELECT max(extract(year FROM as_of AT TIME ZONE 'Asia/Shanghai'))::int "
            "FROM credit.decisions"))
    return max(int(newest or 0), test_year) + 1


# The newest business year with a decision (a later sweep acts on every owing product of the
# base, and moves an earlier module's ladders past its dates), or a rating run.
_NEWEST_DECISION_YEAR = """
    SELECT max(extract(year FROM as_of AT TIME ZONE 'Asia/Shanghai'))::int
      FROM credit.decisions WHERE as_of < '2999-01-01'"""
_NEWEST_RATING_YEAR = """
    SELECT max(substr(period, 1, 4)::int) FROM credit.rating_runs WHERE period < '2999'"""


async def qa_year_after(db: AsyncEngine, test_year: int, offset: int, *,
                        ratings: bool = False) -> int:
    """A QA module's business year: `test_year + offset`, or, when a session sharing the
    stack already decided (or, with `ratings`, ran a rating) in a later year, the year after
    it, capped at 2999. A sweep of a later business day acts on every owing product, a
    module's too, and moves its ladders past the module's dates (a sweep leaves a product
    whose last change is after its day alone); a rating period runs once."""
    async with db.connect() as conn:
        newest = int(await conn.scalar(text(_NEWEST_DECISION_YEAR)) or 0)
        if ratings:
            newest = max(newest, int(await conn.scalar(text(_NEWEST_RATING_YEAR)) or 0))
    return min(max(test_year + offset, newest + 1), 2999)


def new_uid() -> str:
    return uuid.uuid4().hex[:10]


def bill_run_event(account_id: str, customer_id: str, product_ids: Iterable[str], due: int,
                   as_of: datetime, bill_month: str, star_level: int | None = None,
                   ) -> tuple[RawEnvelope, BalanceChanged]:
    """An account's first balance event, a bill run leaving `due` owed for `bill_month`, as
    the balance path's batch handler takes it (envelope and event), for tests that call the
    use case directly (`apply_balance_events`) rather than through Kafka."""
    e = BalanceChanged(
        account_id=account_id, sequence=1, cause=BalanceCause.BILL_RUN, as_of=as_of,
        balance_fen=-due, amount_due_fen=due,
        dues=(BillMonthDue(bill_month=bill_month, amount_due_fen=due),),
        closed_bill_month=bill_month,
        customer=CustomerSnapshot(
            customer_id=customer_id, name="集团", tier=Tier.MID, star_level=star_level,
            account_manager=Person(name="王经理", phone="13900139000"),
            contacts=(Person(name="联系人", phone="13800138000"),)),
        products=tuple(ProductSnapshot(product_id=p, cpno=f"CP-{p}", name="集团V网",
                                       family=ProductFamily.ADC) for p in product_ids))
    return wrap(e, key=account_id, source="test", occurred_at=as_of), e
