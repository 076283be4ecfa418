"""The checker's decision replay follows what became of each suspension warning's SMS (the
notifier's outcomes, `notifier.notices.v1`, as credit-control heard them): a warning whose SMS
failed or was withdrawn (cancelled at send time) is owed again, so the sweep warns again, with
a date of its own, and suspends only a notice period after that one reached the customer
(docs/rules.md "The notice reached the customer"). Before, the replay took every warning as
given when decided and reported the second warning as a decision nothing justifies.

Through the running services, one module-scoped run (billing's API, credit-control's sweeps,
the notifier's simulated SMSC), bill year `test_year + 35`, ADC low tier, two accounts of the
test's own prefix:

- **failed**: its contact's number is undeliverable at the SMSC (the receipt says UNDELIV) when
  the 11-25 warning leaves; 11-30 warns again naming 12-05; that one is delivered; 12-05
  suspends;
- **withdrawn**: the 11-25 warning is held by the quiet hours (decided 07:59:50, the customer
  window opens at 08:00) and the customer is red-listed meanwhile, so the notifier's re-check
  cancels it; the entry is removed; 11-30 warns again naming 12-05; 12-05 suspends.

The checker must be green on that run, and must still catch the defect the replay now
models: a suspension right after a withdrawn warning, with no fresh warning before it.

The pure half (the replay on planted inputs, no stack) is below the stack half."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.notifier import NoticeOutcome, NoticeStatus
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.testing.notices import notices_heard
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack
from credit_control.credit.domain.ladder import NoticePolicy
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from credit_control.credit.domain.rules import decision_id
from tests.reliability.invariants import verify_on
from tests.reliability.invariants.checks import check_decisions
from tests.reliability.invariants.notice_delivered import check_notice_delivered
from tests.reliability.invariants.replay import Inputs, Replay, SweepRun
from tests.reliability.workload import post_retrying

D = DecisionType
SW = "adc-suspension-warning-low"


# --- through the services --------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    prefix: str
    year: int
    failed: str  # product ids
    withdrawn: str


def moment(year: int, month: int, day: int, hh: int = 20, mm: int = 0, ss: int = 0) -> str:
    return datetime(year, month, day, hh, mm, ss, tzinfo=BUSINESS_TZ).isoformat()


async def _open(billing: httpx.AsyncClient, prefix: str, tag: str, phone: str,
                bill_month: str) -> str:
    customer, account, product = f"{prefix}C{tag}", f"{prefix}A{tag}", f"{prefix}P{tag}"
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/v1/customers", {"customer_id": customer, "name": f"通知集团{tag}", "tier": "low",
                           "account_manager": {"name": "经理", "phone": "13900000000"},
                           "contacts": [{"name": "联系人", "phone": phone}]}),
        ("/v1/accounts", {"account_id": account, "customer_id": customer}),
        ("/v1/products", {"product_id": product, "account_id": account, "cpno": f"CP{product}",
                          "name": "集团V网", "family": "ADC"}),
        ("/v1/charges", {"charge_id": f"CH{product}", "account_id": account,
                         "product_id": product, "bill_month": bill_month,
                         "amount_fen": 60_000})]
    for path, body in requests:
        await post_retrying(billing, path, body)
    return product


async def _sweep(credit: httpx.AsyncClient, db: AsyncEngine, prefix: str, key: str,
                 as_of: str) -> None:
    """A sweep once the prefix's inputs are applied (the replay orders a sweep by its start:
    an event it races may or may not have been seen, invariants/replay.py)."""
    await _settled(db, prefix)
    body = (await post_retrying(credit, "/v1/sweeps", {"sweep_id": key, "as_of": as_of})).json()
    if body.get("held"):  # the mass-suspension guard on a shared stack: staff confirm
        await post_retrying(credit, f"/v1/sweeps/{key}/confirm", {})


async def _poll(what: str, probe: Any, timeout: float = 45) -> Any:
    until = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > until:
            raise TimeoutError(what)
        await asyncio.sleep(0.25)


async def _outcome(db: AsyncEngine, product: str, status: str) -> bool:
    """credit-control recorded `status` for the product's current suspension warning."""
    async with db.connect() as conn:
        return bool(await conn.scalar(text(
            "SELECT notice_status = :s FROM credit.product_credit WHERE product_id = :p"),
            {"p": product, "s": status}))


async def _faults(notifier: httpx.AsyncClient, add: list[str], remove: list[str]) -> None:
    """The simulated SMSC's undeliverable numbers, others' entries kept (a shared stack)."""
    faults = (await notifier.get("/v1/smsc/faults")).json()
    numbers = [n for n in faults.get("undeliverable_recipients", []) if n not in remove]
    r = await notifier.put("/v1/smsc/faults", json={
        **faults, "undeliverable_recipients": [*numbers, *(n for n in add if n not in numbers)]})
    assert r.status_code == 200, r.text


async def _settled(db: AsyncEngine, prefix: str, timeout: float = 60) -> None:
    """Every balance event and notice outcome of the prefix applied by credit-control, and no
    SMS of it still to send or to hear of."""
    async def probe() -> bool:
        async with db.connect() as conn:
            left = await conn.scalar(text(
                "SELECT (SELECT count(*) FROM billing.outbox o WHERE o.key LIKE :p AND NOT "
                "  EXISTS (SELECT 1 FROM credit.inbox i WHERE i.consumer = 'credit-control' "
                "  AND i.event_id = o.event_id)) "
                "+ (SELECT count(*) FROM notifier.outbox_messages o WHERE o.key LIKE :p "
                "  AND o.event_type = 'notifier.notice_outcome' AND NOT EXISTS (SELECT 1 "
                "  FROM credit.inbox i WHERE i.consumer = 'credit-control' "
                "  AND i.event_id = o.event_id)) "
                "+ (SELECT count(*) FROM notifier.messages WHERE account_id LIKE :p "
                "  AND status IN ('pending', 'sending', 'held'))"), {"p": prefix + "%"})
        return left == 0 and await notices_heard(db, timeout=0, product_prefix=prefix) == 0

    await _poll(f"{prefix}: not settled", probe, timeout)


async def _year(db: AsyncEngine, test_year: int) -> int:
    """`test_year + 35` (capped at 2999), or the year after the newest decision on the stack
    when a session sharing it already decided later: a sweep of a later business day acts on
    every owing product, these too (the qa_year of test_qa_pass34_repairs.py)."""
    async with db.connect() as conn:
        newest = await conn.scalar(text(
            "SELECT max(extract(year FROM as_of AT TIME ZONE 'Asia/Shanghai'))::int "
            "FROM credit.decisions WHERE as_of < '2999-01-01'"))
    return min(max(test_year + 35, int(newest or 0) + 1), 2999)


@pytest.fixture(scope="module")
async def run(clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
              test_year: int) -> AsyncIterator[Run]:
    billing, credit, notifier = (clients["billing-events"], clients["credit-control"],
                                 clients["notifier"])
    y, uid = await _year(db, test_year), uuid.uuid4().hex[:8]
    prefix = f"rn{uid}-"
    bad_phone = f"137{int(uid, 16) % 10**8:08d}"
    failed = await _open(billing, prefix, "F", bad_phone, f"{y}-10")
    withdrawn = await _open(billing, prefix, "W", f"136{int(uid, 16) % 10**8:08d}", f"{y}-10")
    await post_retrying(billing, "/v1/bill-runs", {"bill_run_id": f"BR{prefix}",
                                                   "bill_month": f"{y}-10",
                                                   "as_of": moment(y, 11, 1, 9)})
    await _faults(notifier, [bad_phone], [])
    exemption = f"EX{prefix}W"
    try:
        # Decided 10 s before the customer window opens: held that long (a simulated year).
        await _sweep(credit, db, prefix, f"{prefix}1125", moment(y, 11, 25, 7, 59, 50))
        r = await credit.post("/v1/exemptions", json={
            "exemption_id": exemption, "customer_id": f"{prefix}CW", "kind": "red_list",
            "reason": "重点客户", "approver": "集团账务管理员", "created_by": "test"})
        assert r.status_code == 201, r.text
        await _poll("withdrawn warning cancelled", lambda: _outcome(db, withdrawn, "cancelled"))
        await _poll("failed warning failed", lambda: _outcome(db, failed, "failed"))
    finally:
        await _faults(notifier, [], [bad_phone])
        r = await credit.post(f"/v1/exemptions/{exemption}/remove", json={})
        assert r.status_code in (200, 404), r.text
    await _sweep(credit, db, prefix, f"{prefix}1130", moment(y, 11, 30))  # warned again
    await _sweep(credit, db, prefix, f"{prefix}1205", moment(y, 12, 5))  # suspended
    await _settled(db, prefix)
    yield Run(prefix, y, failed, withdrawn)


async def _decisions(db: AsyncEngine, product: str) -> list[tuple[str, str, date]]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT decision, decision_id, as_of FROM credit.decisions WHERE product_id = :p "
            "ORDER BY as_of, created_at"), {"p": product})).all()
    return [(r.decision, r.decision_id, r.as_of.astimezone(BUSINESS_TZ).date()) for r in rows]


async def test_a_failed_and_a_withdrawn_warning_warned_again_then_suspended_is_green(
    run: Run, db: AsyncEngine, stack: Stack, services: ServiceProcesses,
) -> None:
    y = run.year
    for product in (run.failed, run.withdrawn):
        taken = await _decisions(db, product)
        # The run did what it is about: warned, warned again (the first SMS lost), suspended.
        # (A later sweep of a session sharing the stack may act on them since: pre-cancel.)
        assert [(d, on) for d, _, on in taken][:4] == [
            ("bill_notice", date(y, 11, 1)), ("suspension_warning", date(y, 11, 25)),
            ("suspension_warning", date(y, 11, 30)), ("suspend", date(y, 12, 5))], taken
        assert taken[2][1] == decision_id(product, f"{SW}:{y}-10:{y}-12-05~1",
                                          D.SUSPENSION_WARNING, 0)
    async with db.connect() as conn:
        report = await verify_on(conn, stack.kafka_bootstrap, run.prefix,
                                 services.specs["gateway-adapter"].url, "test-token")
    assert report.ok, report.as_json()
    decisions = report.by_name("decisions")
    assert decisions.expected == decisions.found >= 2 * 4, decisions
    assert report.by_name("notice delivered before suspension").notes["suspensions"] == 2


async def test_a_suspension_right_after_a_withdrawn_warning_is_caught(
    run: Run, db: AsyncEngine, stack: Stack,
) -> None:
    """Planted in a transaction rolled back: the withdrawn product's second warning never
    decided, its suspension made at the first warning's deadline (11-30). The replay owes
    the second warning (lost), and the suspension's warning never reached the customer."""
    async with db.connect() as conn:
        trans = await conn.begin()
        try:
            gone = await conn.execute(text(
                "DELETE FROM credit.decisions WHERE product_id = :p AND decision = "
                "'suspension_warning' AND decision_id = :d"), {
                    "p": run.withdrawn, "d": decision_id(
                        run.withdrawn, f"{SW}:{run.year}-10:{run.year}-12-05~1",
                        D.SUSPENSION_WARNING, 0)})
            moved = await conn.execute(text(
                "UPDATE credit.decisions SET as_of = :at WHERE product_id = :p "
                "AND decision = 'suspend'"), {
                    "p": run.withdrawn, "at": datetime.fromisoformat(moment(run.year, 11, 30))})
            assert gone.rowcount == moved.rowcount == 1
            decisions = await check_decisions(conn, stack.kafka_bootstrap, run.prefix)
            delivered = await check_notice_delivered(conn, run.prefix)
        finally:
            await trans.rollback()
    assert (decisions.lost, decisions.doubled, decisions.wrong) == (1, 0, 0), decisions
    assert delivered.wrong == 1, delivered


# --- the replay alone (pure) ----------------------------------------------------------------

Y = 2300
T0 = datetime(Y, 11, 1, 1, 0, tzinfo=UTC)
CUSTOMER = CustomerSnapshot(customer_id="C1", name="集团", tier=Tier.LOW,
                            account_manager=Person(name="经理", phone="13900000000"),
                            contacts=(Person(name="联系人", phone="13800000000"),))
PRODUCT = ProductSnapshot(product_id="P1", cpno="CP1", name="集团V网", family=ProductFamily.ADC)
BILL = BalanceChanged(
    account_id="A1", sequence=1, cause=BalanceCause.BILL_RUN,
    as_of=datetime(Y, 11, 1, 9, tzinfo=BUSINESS_TZ), balance_fen=-60_000, amount_due_fen=60_000,
    dues=(BillMonthDue(bill_month=f"{Y}-10", amount_due_fen=60_000),),
    closed_bill_month=f"{Y}-10", customer=CUSTOMER, products=(PRODUCT,))


def business(day: date, hh: int = 20) -> datetime:
    return datetime.combine(day, clock_time(hh), BUSINESS_TZ)


def sweep_on(day: date) -> SweepRun:
    """A sweep as of 20:00 of `day`, run (wall) right then."""
    return SweepRun(business(day), business(day), 1, held=False)


def heard(warning: str, status: NoticeStatus, day: date, permanent: bool = False,
          hh: int = 20) -> tuple[datetime, NoticeOutcome]:
    """An outcome of `warning`'s SMS, credit-control applying it a minute later (wall)."""
    at = business(day, hh) + timedelta(seconds=30)
    return at + timedelta(minutes=1), NoticeOutcome(
        decision_id=warning, product_id="P1", account_id="A1", template="suspension_warning",
        status=status, at=at, wall_at=at, reason="UNDELIV" if status == "failed" else "",
        permanent=permanent)


def warning_id(deadline: date, losses: int = 0) -> str:
    again = f"~{losses}" if losses else ""
    return decision_id("P1", f"{SW}:{Y}-10:{deadline}{again}", D.SUSPENSION_WARNING, 0)


def replay(sweeps: list[date], outcomes: list[tuple[datetime, NoticeOutcome]],
           policy: NoticePolicy | None = None) -> Replay:
    inputs = Inputs([(BILL.as_of, BILL)], [sweep_on(d) for d in sweeps],
                    {1: (None, DEFAULT_RULES)}, {}, set(), outcomes)
    if policy is not None:
        inputs.policy = policy
    r = Replay(inputs)
    r.run()
    return r


def taken(r: Replay) -> list[tuple[DecisionType, str]]:
    return [(e.decision, e.decision_id) for e in r.expected.values()]


SUSPEND = decision_id("P1", f"adc-suspend-low:{Y}-10", D.SUSPEND, 0)
W1 = warning_id(date(Y, 11, 30))


@pytest.mark.parametrize("lost", [NoticeStatus.FAILED, NoticeStatus.CANCELLED])
def test_a_lost_warning_is_owed_again_and_the_suspension_waits_for_the_new_one(
    lost: NoticeStatus,
) -> None:
    w2 = warning_id(date(Y, 12, 5), losses=1)
    outcomes = [heard(W1, NoticeStatus.SENT, date(Y, 11, 25)),
                heard(W1, lost, date(Y, 11, 25)),
                heard(w2, NoticeStatus.SENT, date(Y, 11, 30)),
                heard(w2, NoticeStatus.DELIVERED, date(Y, 11, 30))]
    r = replay([date(Y, 11, 25), date(Y, 11, 30)], outcomes)
    assert taken(r)[1:] == [(D.SUSPENSION_WARNING, W1), (D.SUSPENSION_WARNING, w2)]
    assert r.products["P1"].state is CreditState.SUSPENSION_WARNED  # not at the 1st deadline
    r = replay([date(Y, 11, 25), date(Y, 11, 30), date(Y, 12, 4), date(Y, 12, 5)], outcomes)
    assert taken(r)[1:] == [(D.SUSPENSION_WARNING, W1), (D.SUSPENSION_WARNING, w2),
                            (D.SUSPEND, SUSPEND)]
    assert r.products["P1"].suspended_on == date(Y, 12, 5)


def test_a_warning_not_heard_of_holds_the_suspension() -> None:
    """Nothing heard yet (or sent without the receipt the policy waits for): the deadline's
    sweep waits; the receipt comes, the next sweep suspends."""
    outcomes = [heard(W1, NoticeStatus.SENT, date(Y, 11, 25))]
    r = replay([date(Y, 11, 25), date(Y, 11, 30)], outcomes)
    assert r.products["P1"].state is CreditState.SUSPENSION_WARNED
    late = heard(W1, NoticeStatus.DELIVERED, date(Y, 11, 27))
    r = replay([date(Y, 11, 25), date(Y, 11, 30), date(Y, 12, 1), date(Y, 12, 2)],
               [*outcomes, late])
    assert taken(r)[-1] == (D.SUSPEND, SUSPEND)
    assert r.products["P1"].suspended_on == date(Y, 12, 2)  # the 27th + 5 days


def test_three_failed_in_a_row_suspend_as_an_exception_but_withdrawn_ones_never_do() -> None:
    # A warning decided on day D names D + the span of D's month (5 days in November, 6 in
    # December), each sweep on the deadline of the warning before.
    days = [date(Y, 11, 25), date(Y, 11, 30), date(Y, 12, 5), date(Y, 12, 11)]
    deadlines = [date(Y, 11, 30), date(Y, 12, 5), date(Y, 12, 11), date(Y, 12, 17)]
    for lost, last in [(NoticeStatus.FAILED, D.SUSPEND),
                       (NoticeStatus.CANCELLED, D.SUSPENSION_WARNING)]:
        outcomes = [heard(warning_id(deadlines[n], n), lost, days[n]) for n in range(3)]
        r = replay(days, outcomes)
        kinds = [d for d, _ in taken(r)]
        # failed: the third's deadline (12-11) suspends as an exception; withdrawn: a 4th one
        assert kinds[1:] == [D.SUSPENSION_WARNING] * 3 + [last], (lost, taken(r))
        if last is D.SUSPENSION_WARNING:
            assert taken(r)[-1][1] == warning_id(deadlines[3], 3)


def test_a_permanent_failure_suspends_at_the_deadline_as_an_exception() -> None:
    r = replay([date(Y, 11, 25), date(Y, 11, 30)],
               [heard(W1, NoticeStatus.FAILED, date(Y, 11, 25), permanent=True)])
    assert taken(r)[-1] == (D.SUSPEND, SUSPEND)


def test_an_unheard_warning_is_lost_two_days_after_its_deadline() -> None:
    r = replay([date(Y, 11, 25), date(Y, 11, 30), date(Y, 12, 1), date(Y, 12, 2)],
               [heard(W1, NoticeStatus.SENT, date(Y, 11, 25))])
    assert taken(r)[1:] == [(D.SUSPENSION_WARNING, W1),
                            (D.SUSPENSION_WARNING, warning_id(date(Y, 12, 8), 1))]


def test_an_outcome_after_the_product_moved_on_changes_nothing() -> None:
    """A late `delivered` of the lost first warning (the new one is current) is not read as
    the new one's; an outcome of a decision that is not the current warning neither."""
    w2 = warning_id(date(Y, 12, 5), losses=1)
    r = replay([date(Y, 11, 25), date(Y, 11, 30), date(Y, 12, 5)],
               [heard(W1, NoticeStatus.FAILED, date(Y, 11, 25)),
                heard(W1, NoticeStatus.DELIVERED, date(Y, 12, 1)),
                heard("not-a-warning", NoticeStatus.DELIVERED, date(Y, 11, 30))])
    assert taken(r)[-1] == (D.SUSPENSION_WARNING, w2)
    assert r.products["P1"].state is CreditState.SUSPENSION_WARNED


def test_without_receipts_a_sent_warning_is_enough() -> None:
    r = replay([date(Y, 11, 25), date(Y, 11, 30)], [heard(W1, NoticeStatus.SENT, date(Y, 11, 25))],
               NoticePolicy(requires_delivery=False))
    assert taken(r)[-1] == (D.SUSPEND, SUSPEND)
