"""Amounts still true when they leave, through real Kafka and PostgreSQL, the notifier alone
as a process (its own consumer group and inbox): credit-control's events are published on
credit.decisions.v1 under one account's key, as credit-control publishes them. A bill notice
decided at 22:30 and held by the quiet hours says the product's new amount after a partial
payment; a suspension warning whose product owes nothing of its own any more is cancelled; a
deduction notice (made from what the deduction collected) is not revised; a redelivered
amount change (the same event) changes nothing more, however old it is."""

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.credit_control import DECISIONS_TOPIC, CreditState, DecisionType
from common.envelope import Contract, to_bytes, wrap
from common.kafka import Publisher, ensure_topics
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack
from notifier.domain.revision import NOTHING_OWED_REASON

from .notifier_fixtures import amount_changed, collected, context_for, decision, local

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "uv.lock").exists())
D, S = DecisionType, CreditState


def bill_notice_text(uid: str, amount: str) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP{uid})目前有{amount}元话费"
            "未缴清,请于11月25日前及时缴费以免影响您的集团产品服务。谢谢。")


class Credit:
    """Publishes as credit-control does: one account's key, so in order."""

    def __init__(self, stack: Stack, account: str) -> None:
        self.stack, self.account = stack, account

    def message(self, event: Contract) -> tuple[str, bytes, bytes]:
        """The bytes on the wire: sent again, the same event (its id) delivered again."""
        keyed = msgspec.structs.replace(event, account_id=self.account)
        env = wrap(keyed, key=self.account, source="credit-control",
                   occurred_at=datetime.now(UTC))
        return DECISIONS_TOPIC, self.account.encode(), to_bytes(env)

    async def publish(self, messages: Sequence[tuple[str, bytes, bytes]]) -> None:
        await ensure_topics(self.stack.kafka_bootstrap, [DECISIONS_TOPIC], partitions=6)
        publisher = Publisher(self.stack.kafka_bootstrap, "notifier-revision-test")
        await publisher.start()
        try:
            await publisher.send_many(list(messages))
        finally:
            await publisher.stop()


async def _log(db: AsyncEngine, product_id: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT template, status, status_reason, text, revised_at, fields "
            "FROM notifier.messages WHERE product_id = :p ORDER BY template"), {"p": product_id})
        return [dict(r._mapping) for r in rows]


@pytest.mark.usefixtures("shared_notifier_paused")  # conftest.py
async def test_held_notices_leave_with_the_amount_still_owed(
    stack: Stack, db: AsyncEngine, uid: str, test_year: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = int(os.environ.get("CREDITCTL_TEST_BASE_PORT", "18100"))
    monkeypatch.setenv("NOTIFIER_SERVICE_NAME", f"notifier-revision-{uid}")
    procs = ServiceProcesses([ServiceSpec("notifier", "notifier", "NOTIFIER_", base + 14)],
                             stack, ROOT / "test-artifacts" / "logs-notifier-revision", "t")
    credit = Credit(stack, f"A{uid}")
    bill, warned, deducted, sentinel = (context_for(f"{uid}-{n}", test_year)
                                        for n in ("bill", "warn", "deduct", "sentinel"))
    night, paid = local(test_year, "11-02T22:30"), local(test_year, "11-02T23:10")
    first_change = credit.message(amount_changed(bill, 2_345, paid))
    await credit.publish([
        credit.message(decision(bill, D.BILL_NOTICE, at=night)),
        credit.message(decision(warned, D.SUSPENSION_WARNING, at=night, before=S.WARNED,
                                after=S.SUSPENSION_WARNED)),
        credit.message(collected(deducted, 5_000, night)),
        first_change,
        credit.message(amount_changed(warned, 0, paid, account_fen=2_345,
                                      state=S.SUSPENSION_WARNED)),
        credit.message(amount_changed(deducted, 7_345, paid)),
    ])
    procs.start("notifier")
    try:
        procs.wait_ready("notifier")
        [b] = await eventually(lambda: _log(db, bill.product.product_id),
                               lambda ms: len(ms) == 1 and ms[0]["revised_at"] is not None,
                               timeout=60, what="the held bill notice revised")
        assert (b["status"], b["text"]) == ("held", bill_notice_text(f"{uid}-bill", "23.45"))
        [w] = await _log(db, warned.product.product_id)
        assert (w["status"], w["status_reason"]) == ("cancelled", NOTHING_OWED_REASON)
        [d] = await _log(db, deducted.product.product_id)
        assert (d["status"], d["revised_at"], d["fields"]["amount_fen"]) == ("held", None, 5_000)
        assert "划扣50.00元" in d["text"]

        # A later payment, then the first change delivered again (the same event id) and a
        # sentinel behind them on the same key: the redelivery changes nothing more.
        await credit.publish([credit.message(amount_changed(bill, 1_000, paid, sequence=3))])
        [b] = await eventually(lambda: _log(db, bill.product.product_id),
                               lambda ms: "10.00元" in ms[0]["text"], timeout=60,
                               what="the second change applied")
        await credit.publish([first_change, credit.message(decision(sentinel, at=night))])
        await eventually(lambda: _log(db, sentinel.product.product_id), lambda ms: len(ms) == 1,
                         timeout=60, what="the sentinel behind the redelivery")
        assert await _log(db, bill.product.product_id) == [b]
        assert b["text"] == bill_notice_text(f"{uid}-bill", "10.00")
    finally:
        procs.stop_all()
