"""The deadline the sweep's SQL names a suspension warning by (adapters/sweep_sql.py
`_sw_deadline_date`, what the decided rows' UPDATE writes, and `_sw_deadline`, its text in the
decision's period and id) is the domain's (`ladder.suspension_deadline` with `sent_on` =
`ladder.first_sending_day` of the sweep's moment): the notice counts from the day the SMS can
first leave — the next day for a sweep at or after the customer sending window's close (21:00
by default), the same day before its opening (08:00) — and, for a catch-up, from the moment it
really runs. The sweep passes that day to the SQL as the plan's `notice_date`
(`sweeps.sending_day` → `rules.sweep_plan`), as the catch-up's `sent_on` always was.

Each case is a VALUES row (the `due` relation the sweep builds from its plan, and a product's
oldest owing month): no table is touched. Moments around 07:59, 08:00, 20:59, 21:00 and 23:00,
on month ends (a leap February's 25th, 28th and 29th, January's 31st, April's 30th, the year's
last day), for every family × tier's suspension-warning row."""

import types
from datetime import date, datetime, time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, business_date
from common.contracts.credit_control import DecisionType
from common.sending_hours import DEFAULT_CUSTOMER_WINDOW, SendingWindow
from credit_control.credit.adapters import sweep_sql
from credit_control.credit.domain import rules
from credit_control.credit.domain.ladder import first_sending_day, suspension_deadline
from credit_control.credit.domain.rule_table import DEFAULT_RULES, add_months
from credit_control.credit.service_layer import sweeps

pytestmark = pytest.mark.integration

DAYS = [date(2028, 2, 25), date(2028, 2, 28), date(2028, 2, 29), date(2027, 2, 25),
        date(2027, 2, 28), date(2027, 1, 31), date(2027, 4, 30), date(2027, 12, 31),
        date(2027, 10, 25)]
TIMES = [time(0, 0), time(7, 59, 59), time(8, 0), time(20, 59, 59), time(21, 0), time(23, 0)]
# (a catch-up's as_of, the moment it really runs)
CATCH_UPS = [(datetime(2026, 10, 25, 20, tzinfo=BUSINESS_TZ),
              datetime(2026, 10, 28, 10, tzinfo=BUSINESS_TZ)),
             (datetime(2026, 10, 25, 20, tzinfo=BUSINESS_TZ),
              datetime(2026, 10, 28, 21, 30, tzinfo=BUSINESS_TZ)),
             (datetime(2028, 2, 25, 23, tzinfo=BUSINESS_TZ),
              datetime(2028, 2, 26, 7, tzinfo=BUSINESS_TZ))]

_SQL = sweep_sql._typed(
    f"WITH {sweep_sql._DUE_SQL} "
    f"SELECT r.rule_id, {sweep_sql._sw_deadline_date('r', 'p')} AS named, "
    f"{sweep_sql._sw_deadline('r', 'p')} AS named_text "
    "FROM due r, (SELECT CAST(:oldest AS date) AS oldest_due_month) p "
    "WHERE r.decision = 'suspension_warning' ORDER BY r.rule_id")


def _ctx(window: SendingWindow, now: datetime) -> types.SimpleNamespace:
    return types.SimpleNamespace(settings=types.SimpleNamespace(sending_window=window),
                                 clock=types.SimpleNamespace(now=lambda: now))


def _moments() -> list[tuple[datetime, datetime | None]]:
    plain: list[tuple[datetime, datetime | None]] = [
        (datetime.combine(d, t, BUSINESS_TZ), None) for d in DAYS for t in TIMES]
    return plain + [(as_of, real) for as_of, real in CATCH_UPS]


async def _check(db: AsyncEngine, window: SendingWindow) -> int:
    checked = 0
    async with db.connect() as conn:
        for as_of, real in _moments():
            today = business_date(as_of)
            # The service's own plumbing: the day its sweep passes (sweeps.sending_day) is the
            # domain's first sending day.
            sent_on = sweeps.sending_day(_ctx(window, real or as_of), as_of, real is not None)
            assert sent_on == first_sending_day(as_of, window, real), (as_of, real)
            steps = [(n, s) for n, s in enumerate(rules.sweep_plan(DEFAULT_RULES, today,
                                                                   sent_on=sent_on))
                     if s.row.decision is DecisionType.SUSPENSION_WARNING]
            assert steps
            values = sweep_sql._due_values(steps)
            for step_oldest in {s.cutoff for _, s in steps if s.cutoff is not None}:
                for oldest in (step_oldest, add_months(step_oldest, -1)):
                    rows = (await conn.execute(text(_SQL), {**values, "oldest": oldest})).all()
                    by_rule = {s.row.rule_id: s for _, s in steps}
                    assert len(rows) == len(steps)
                    for row in rows:
                        row_ = by_rule[row.rule_id].row
                        want = suspension_deadline(DEFAULT_RULES, row_.family, row_.tier,
                                                   oldest, today, sent_on)
                        assert row.named == want, (as_of, real, row.rule_id, oldest)
                        assert row.named_text == want.isoformat()
                        checked += 1
    return checked


async def test_the_sweeps_named_deadline_is_the_domains(db: AsyncEngine) -> None:
    assert await _check(db, DEFAULT_CUSTOMER_WINDOW) > 500


async def test_with_another_window_too(db: AsyncEngine) -> None:
    # A window changed (both services' settings): 22:00 still sends, 07:59 waits for 08:30.
    assert await _check(db, SendingWindow.parse("08:30-22:00")) > 500


async def test_the_qa_pass_37_case(db: AsyncEngine) -> None:
    """Low tier, a leap February: decided at 23:00 on the 25th, the SQL names 03-01 (02-26 +
    4), not 02-29; decided at 20:59:59, 02-29."""
    jan = date(2028, 1, 1)
    async with db.connect() as conn:
        for hhmm, named in ((time(23), date(2028, 3, 1)), (time(21), date(2028, 3, 1)),
                            (time(20, 59, 59), date(2028, 2, 29)),
                            (time(7, 59), date(2028, 2, 29))):
            as_of = datetime.combine(date(2028, 2, 25), hhmm, BUSINESS_TZ)
            sent_on = sweeps.sending_day(_ctx(DEFAULT_CUSTOMER_WINDOW, as_of), as_of, False)
            steps = [(n, s) for n, s in enumerate(rules.sweep_plan(
                DEFAULT_RULES, as_of.date(), sent_on=sent_on))
                if s.row.rule_id == "adc-suspension-warning-low"]
            [row] = (await conn.execute(text(_SQL), {**sweep_sql._due_values(steps),
                                                     "oldest": jan})).all()
            assert row.named == named, hhmm
