"""Notice before suspension, delivered (issue 15): every suspension was preceded in its
arrears cycle by a suspension warning (as `notice.py` checks) whose SMS reached the customer —
delivered, where the SMSC returns receipts (sent, where it does not) — at least the notice
period before the suspension's business day; or it is recorded as an exception with its
reason (the threshold rule; "; exception: …" in its reason: the warning could never be
delivered, or too many were lost in a row).

When a warning reached the customer is the notifier's record: `notifier.notice_outcomes`
(the outcomes it published on notifier.notices.v1, in business time). Suspensions whose
warning predates notice outcomes (credit-control migration 0011 took those as delivered)
fail this check: run it on data made by this version.

And no warning left waiting for ever (`unheard_left`, counted `lost`: the new warning or the
exception suspension that should exist does not): a product still suspension-warned on a
warning the notifier never reported as reached or lost, although a sweep of a business day on
or after the warning's deadline + `unheard_after_days` finished after the warning was decided
(that sweep should have read it as lost: credit-control's ladder.heard_as_of).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date
from common.contracts.snapshots import Tier
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleTable

from .counts import Check
from .notice import _ENDS_CYCLE, Row, _like, exception_reason, load

NAME = "notice delivered before suspension"
EXCEPTION_MARK = "; exception: "


def violations(rows: list[Row], tables: dict[int, RuleTable],
               reached: dict[str, datetime]) -> tuple[list[str], dict[str, int]]:
    """The suspensions whose warning's SMS did not reach the customer a notice period
    earlier. `rows`: decisions ordered by product, then as_of; `reached`: warning decision
    id → when its SMS reached the customer (business time)."""
    problems: list[str] = []
    notes = {"suspensions": 0, "exceptions": 0}
    warnings: dict[str, list[Row]] = {}
    for row in rows:
        if row.decision in _ENDS_CYCLE:
            warnings[row.product_id] = []
        elif row.decision == "suspension_warning":
            warnings.setdefault(row.product_id, []).append(row)
        elif row.decision == "suspend":
            notes["suspensions"] += 1
            if exception_reason(row) is not None or EXCEPTION_MARK in row.reason:
                notes["exceptions"] += 1
                continue
            # Whether the warning named the right date is notice.py's check; this one asks
            # only whether a warning of the same cycle and month reached the customer in time.
            given = [w for w in warnings.get(row.product_id, [])
                     if w.bill_month == row.bill_month
                     and _reached_in_time(w, row, tables, reached)]
            if not given:
                problems.append(f"{row.product_id}: suspension {row.decision_id} on "
                                f"{business_date(row.as_of)} without a suspension warning of "
                                "its cycle whose SMS reached the customer a notice period "
                                "earlier")
    return problems, notes


def _reached_in_time(warning: Row, suspension: Row, tables: dict[int, RuleTable],
                     reached: dict[str, datetime]) -> bool:
    at = reached.get(warning.decision_id)
    if at is None:
        return False
    table = tables.get(warning.rule_version or 0, DEFAULT_RULES)
    notice = table.notice_days(warning.family, warning.tier or Tier.LOW,
                               business_date(warning.as_of))
    return (business_date(suspension.as_of) - business_date(at)).days >= max(1, notice)


async def check_notice_delivered(conn: AsyncConnection, prefix: str,
                                 requires_delivery: bool = True,
                                 unheard_after_days: int = 2) -> Check:
    c = Check(NAME)
    rows, tables = await load(conn, prefix)
    statuses = ["delivered"] if requires_delivery else ["delivered", "sent"]
    reached: dict[str, datetime] = {}
    for r in await conn.execute(text(
            "SELECT decision_id, min(at) AS at FROM notifier.notice_outcomes "
            "WHERE product_id LIKE :p AND status = ANY(:s) GROUP BY decision_id"),
            {"p": _like(prefix), "s": statuses}):
        reached[r.decision_id] = r.at
    problems, notes = violations(rows, tables, reached)
    c.expected = c.found = notes["suspensions"]
    left = await _unheard_left(conn, prefix, [*statuses, "failed", "cancelled"],
                               unheard_after_days)
    c.notes = {**notes, "unheard_left": len(left)}
    c.flag("wrong", len(problems), problems)
    c.flag("lost", len(left), left)
    return c


@dataclass(frozen=True)
class Waiting:
    """A product still suspension-warned, on the warning it waits for."""

    product_id: str
    warning_id: str
    deadline: date
    decided_at: datetime  # wall: when the warning was decided (its row written)


def unheard_left(waiting: list[Waiting], heard: set[str],
                 sweeps: list[tuple[date, datetime]], unheard_after_days: int) -> list[str]:
    """The products waiting on a warning never heard of (not in `heard`: warning ids with an
    outcome that reached the customer or lost the SMS) past its limit, although a sweep of a
    day at or after the limit finished (wall) after the warning was decided. `sweeps`:
    (business day, finished at) of the finished sweeps."""
    problems = []
    for w in waiting:
        if w.warning_id in heard:
            continue
        limit = w.deadline + timedelta(days=unheard_after_days)
        missed = sorted(day for day, finished in sweeps
                        if day >= limit and finished > w.decided_at)
        if missed:
            problems.append(f"{w.product_id}: suspension warning {w.warning_id} (deadline "
                            f"{w.deadline}) never heard of, and the sweep of {missed[0]} "
                            "neither warned again nor suspended")
    return problems


async def _unheard_left(conn: AsyncConnection, prefix: str, statuses: list[str],
                        unheard_after_days: int) -> list[str]:
    waiting = [Waiting(r.product_id, r.warning_id, r.deadline, r.created_at)
               for r in await conn.execute(text(
                   "SELECT pc.product_id, pc.suspension_warning_id AS warning_id, "
                   "pc.suspension_deadline AS deadline, d.created_at "
                   "FROM credit.product_credit pc JOIN credit.decisions d "
                   "  ON d.decision_id = pc.suspension_warning_id "
                   "WHERE pc.product_id LIKE :p AND pc.state = 'suspension_warned' "
                   "  AND pc.suspension_deadline IS NOT NULL"), {"p": _like(prefix)})]
    if not waiting:
        return []
    heard = set((await conn.execute(text(
        "SELECT DISTINCT decision_id FROM notifier.notice_outcomes "
        "WHERE decision_id = ANY(:ids) AND status = ANY(:s)"),
        {"ids": [w.warning_id for w in waiting], "s": statuses})).scalars())
    sweeps = [(r.business_date, r.finished_at) for r in await conn.execute(text(
        "SELECT business_date, finished_at FROM credit.sweep_runs "
        "WHERE status = 'done' AND finished_at IS NOT NULL"))]
    return unheard_left(waiting, heard, sweeps, unheard_after_days)
