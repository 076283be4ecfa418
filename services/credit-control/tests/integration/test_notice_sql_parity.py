"""The sweep's notice predicates (adapters/sweep_sql.py `notice_exception`, `notice_again`,
`notice_allows`, `notice_losses`) say what the domain's (credit/domain/ladder.py) says, case
by case: failed, withdrawn (`cancelled`), unheard, delivered; before and at the limits. Above
all a withdrawn warning — the notifier's re-check cancelled it — is owed again and never
counts toward :max_warnings. Each case is a VALUES row: no table is touched. And the
consumer's record of an outcome (adapters/notice_sql.py `_RECORD`) is `Notice.heard`, the
pure reference the invariant checker's replay records outcomes with (on a temporary table of
the row's notice columns)."""

import re
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ
from credit_control.credit.adapters import notice_sql, sweep_sql
from credit_control.credit.domain.ladder import (
    DEFAULT_POLICY,
    Notice,
    heard_as_of,
    notice_allows,
    warning_owed_again,
)

pytestmark = pytest.mark.integration

DEADLINE = date(2026, 11, 30)
WARNED = datetime.combine(date(2026, 11, 25), time(10), BUSINESS_TZ)
# (status, failures, withdrawals, permanent, sent, delivered)
CASES = [
    (status, failures, withdrawals, permanent, sent, delivered)
    for status, permanent, sent, delivered in [
        ("failed", False, True, False), ("failed", True, False, False),
        ("cancelled", False, False, False), ("sent", False, True, False),
        (None, False, False, False), ("delivered", False, True, True)]
    for failures in (0, 2, 3) for withdrawals in (0, 1, 3)
    if not (permanent and failures == 0)]
DAYS = [DEADLINE, DEADLINE + timedelta(days=2)]


def _sql() -> str:
    p = "p"
    return _typed(
        f"SELECT {sweep_sql.notice_exception(p)}, {sweep_sql.notice_again(p)}, "
        f"{sweep_sql.notice_allows(p)}, {sweep_sql.notice_losses(p)} FROM (SELECT "
        "CAST(:status AS text) AS notice_status, CAST(:failures AS integer) AS notice_failures, "
        "CAST(:withdrawals AS integer) AS notice_withdrawals, "
        "CAST(:permanent AS boolean) AS notice_permanent, "
        "CAST(:deadline AS date) AS suspension_deadline, "
        "CAST(:sent_at AS timestamptz) AS notice_sent_at, "
        "CAST(:delivered_at AS timestamptz) AS notice_delivered_at, "
        "CAST(:days AS integer) AS notice_days) p")


POLICY_TYPES = {"today": "date", "max_warnings": "integer", "requires_delivery": "boolean",
                "unheard_after_days": "integer"}


def _typed(sql: str) -> str:
    """The sweep's policy binds, typed for asyncpg as the sweep's statement types them."""
    return re.sub(r":(today|max_warnings|requires_delivery|unheard_after_days)\b",
                  lambda m: f"CAST(:{m[1]} AS {POLICY_TYPES[m[1]]})", sql)


@pytest.mark.parametrize("today", DAYS)
async def test_the_sweeps_notice_predicates_are_the_domains(db: AsyncEngine, today: date) -> None:
    statement = text(_sql())
    async with db.connect() as conn:
        for status, failures, withdrawals, permanent, sent, delivered in CASES:
            notice = Notice(status, WARNED.date() if sent else None,
                            WARNED.date() if delivered else None, notice_days=5,
                            permanent=permanent, failures=failures, withdrawals=withdrawals)
            read = heard_as_of(notice, DEADLINE, DEFAULT_POLICY, today)
            assert read is not None
            want = (read.exception(DEFAULT_POLICY) is not None,
                    warning_owed_again(read, DEFAULT_POLICY),
                    notice_allows(read, DEFAULT_POLICY, today), read.losses)
            row = (await conn.execute(statement, {
                "status": status, "failures": failures, "withdrawals": withdrawals,
                "permanent": permanent, "deadline": DEADLINE,
                "sent_at": WARNED if sent else None, "delivered_at": WARNED if delivered else None,
                "days": 5, "today": today, "max_warnings": DEFAULT_POLICY.max_warnings,
                "requires_delivery": DEFAULT_POLICY.requires_delivery,
                "unheard_after_days": DEFAULT_POLICY.unheard_after_days})).one()
            got = (bool(row[0]), bool(row[1]), bool(row[2]), int(row[3]))
            assert got == want, (status, failures, withdrawals, permanent, today)


# --- recording an outcome: the consumer's UPDATE (notice_sql._RECORD) is `Notice.heard` -----
HEARD_AT = datetime.combine(date(2026, 11, 27), time(9, 30), BUSINESS_TZ)
# (status, sent, delivered, failures, withdrawals) before the outcome: the states a product's
# row can be in (a final one included, which nothing changes) …
BEFORE = [(None, False, False, 0, 0), (None, False, False, 2, 1), ("sent", True, False, 1, 0),
          ("delivered", True, True, 0, 0), ("failed", True, False, 1, 0),
          ("failed", False, False, 3, 0), ("cancelled", False, False, 0, 1)]
# … and every outcome the notifier publishes, a permanent failure included.
OUTCOMES = [("sent", False), ("delivered", False), ("failed", False), ("failed", True),
            ("cancelled", False), ("sent", True)]  # permanent means something only if failed


@pytest.mark.parametrize(("status", "sent", "delivered", "failures", "withdrawals"), BEFORE)
async def test_recording_an_outcome_is_the_domains_notice_heard(
    db: AsyncEngine, status: str | None, sent: bool, delivered: bool, failures: int,
    withdrawals: int,
) -> None:
    """The row the consumer's statement leaves is the `Notice` that `Notice.heard` gives (the
    invariant checker's replay records outcomes with it): status, the days sent and
    delivered, the reason, permanence and both counts, for each outcome after each state."""
    record = str(notice_sql._RECORD.text).replace("credit.product_credit", "pg_temp.pc_parity")
    async with db.connect() as conn:
        await conn.execute(text(
            "CREATE TEMP TABLE pc_parity (product_id text, suspension_warning_id text, "
            "notice_status text, notice_sent_at timestamptz, notice_delivered_at timestamptz, "
            "notice_reason text, notice_permanent boolean, notice_failures integer, "
            "notice_withdrawals integer)"))
        for outcome, permanent in OUTCOMES:
            await conn.execute(text("DELETE FROM pc_parity"))
            await conn.execute(text(
                "INSERT INTO pc_parity VALUES ('P', 'W', :status, :sent_at, :delivered_at, "
                "'before', false, :failures, :withdrawals)"), {
                "status": status, "sent_at": WARNED if sent else None,
                "delivered_at": WARNED if delivered else None, "failures": failures,
                "withdrawals": withdrawals})
            await conn.execute(text(record), {
                "product_id": "P", "decision_id": "W", "status": outcome, "at": HEARD_AT,
                "reason": "provider: 号码不存在", "permanent": permanent})
            row = (await conn.execute(text("SELECT * FROM pc_parity"))).one()
            before = Notice(status, WARNED.date() if sent else None,
                            WARNED.date() if delivered else None, reason="before",
                            failures=failures, withdrawals=withdrawals)
            want = before.heard(outcome, HEARD_AT.date(), "provider: 号码不存在", permanent)
            got = Notice(row.notice_status, _day(row.notice_sent_at), _day(row.notice_delivered_at),
                         reason=row.notice_reason, permanent=row.notice_permanent,
                         failures=row.notice_failures, withdrawals=row.notice_withdrawals)
            assert got == want, (status, failures, withdrawals, outcome, permanent)
        await conn.rollback()


def _day(at: datetime | None) -> date | None:
    return at.astimezone(BUSINESS_TZ).date() if at is not None else None
