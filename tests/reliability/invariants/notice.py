"""Notice before suspension (issue 15 point 4, domain/ladder.py): every suspension was
preceded in its arrears cycle by a suspension warning for the same oldest owing month that
named a date no later than the suspension and was decided at least the notice period earlier
(the rule table's, for the warning's version, tier and day), or it is recorded as an exception
with its reason.

Read from credit-control's decisions alone. A cycle ends at a restore or an arrears-cleared
decision (the product went back to normal). Exceptions, counted in `notes`, not failures: the
opt-in real-time threshold rule (seed 004 授信额度 suspends on the balance event by design).
Late suspensions (their warning came late: billed late, catch-up sweep, downgrade, expired
exemption, reversed payment) pass and are counted in `notes["late"]`.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleTable

from .counts import Check

NAME = "notice before suspension"
_ENDS_CYCLE = ("restore", "arrears_cleared")


@dataclass(frozen=True)
class Row:
    """One decision of a product, as the check needs it."""

    decision_id: str
    product_id: str
    family: ProductFamily
    decision: str
    rule_id: str
    reason: str
    as_of: datetime
    bill_month: str | None
    deadline: date | None
    tier: Tier | None
    rule_version: int | None


def exception_reason(suspension: Row) -> str | None:
    """Why a suspension may come without a suspension warning, or None."""
    if "-threshold-suspend-" in suspension.rule_id:
        return "threshold rule (opt-in real-time credit limit, seed 004)"
    return None


def violations(rows: list[Row], tables: dict[int, RuleTable]) -> tuple[list[str], dict[str, int]]:
    """The suspensions without notice (one text each), and the notes (late, exceptions).
    `rows`: decisions of any products, ordered by product, then as_of."""
    problems: list[str] = []
    notes = {"suspensions": 0, "late": 0, "exceptions": 0}
    warnings: dict[str, list[Row]] = {}
    for row in rows:
        if row.decision in _ENDS_CYCLE:
            warnings[row.product_id] = []  # a new arrears cycle: earlier warnings are spent
        elif row.decision == "suspension_warning":
            warnings.setdefault(row.product_id, []).append(row)
        elif row.decision == "suspend":
            notes["suspensions"] += 1
            if exception_reason(row) is not None:
                notes["exceptions"] += 1
                continue
            if "; late:" in row.reason:
                notes["late"] += 1
            if not any(_gave_notice(w, row, tables) for w in warnings.get(row.product_id, [])):
                problems.append(f"{row.product_id}: suspension {row.decision_id} on "
                                f"{business_date(row.as_of)} (bill month {row.bill_month}) "
                                "without a suspension warning of its cycle and month, named "
                                "no later and at least the notice period earlier")
    return problems, notes


def _gave_notice(warning: Row, suspension: Row, tables: dict[int, RuleTable]) -> bool:
    if warning.bill_month != suspension.bill_month or warning.deadline is None:
        return False
    warned_on, suspended_on = business_date(warning.as_of), business_date(suspension.as_of)
    if warning.deadline > suspended_on:
        return False
    table = tables.get(warning.rule_version or 0, DEFAULT_RULES)
    notice = table.notice_days(warning.family, warning.tier or Tier.LOW, warned_on)
    return (suspended_on - warned_on).days >= max(1, notice)


async def load(conn: AsyncConnection, prefix: str) -> tuple[list[Row], dict[int, RuleTable]]:
    """The products' warnings, suspensions and cycle ends, in order, and every rule table."""
    tables = {int(r.version): RuleTable(version=r.version, rows=r.rows)
              for r in await conn.execute(text("SELECT version, rows FROM credit.rule_tables"))}
    result = await conn.execute(text(
        "SELECT d.decision_id, d.product_id, pc.family, d.decision, d.rule_id, d.reason, "
        "d.as_of, d.context::json AS context, d.inputs::json AS inputs, d.rule_version "
        "FROM credit.decisions d "
        "JOIN credit.product_credit pc ON pc.product_id = d.product_id "
        "WHERE d.product_id LIKE :p AND d.decision IN "
        "('suspension_warning', 'suspend', 'restore', 'arrears_cleared') "
        "ORDER BY d.product_id, d.as_of, d.decision_id"), {"p": _like(prefix)})
    return [_row(r) for r in result], tables


async def check_notice(conn: AsyncConnection, prefix: str) -> Check:
    c = Check(NAME)
    rows, tables = await load(conn, prefix)
    problems, notes = violations(rows, tables)
    c.expected = c.found = notes["suspensions"]
    c.notes = notes
    c.flag("wrong", len(problems), problems)
    return c


def _row(r: Any) -> Row:
    context, inputs = r.context or {}, r.inputs or {}
    deadline = context.get("deadline")
    tier = inputs.get("tier")
    return Row(r.decision_id, r.product_id, ProductFamily(r.family), r.decision, r.rule_id,
               r.reason, r.as_of, context.get("bill_month"),
               date.fromisoformat(deadline) if deadline else None,
               Tier(tier) if tier else None, r.rule_version)


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
