"""The difference between two replays of the same month (current table vs draft). Pure.

Per product, the first day it was warned, suspension-warned and suspended under each table
(earlier, later, only under one); per table, the SMS per template the decisions would have
sent, the products suspended per day and the arrears at month end with payments as they came.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from common.contracts.credit_control import CreditState, DecisionType

from .history import AccountHistory
from .replay import Decided, Outcome

D = DecisionType
S = CreditState
# The notifier's templates per decision (notifier/domain/notices.py; services never import
# each other, so the mapping is repeated here; test_whatif_replay's
# test_templates_follow_the_notifier_names checks the names). Not a
# deduction's: its notice follows what billing collected (`templates`).
_TEMPLATES: dict[DecisionType, tuple[str, ...]] = {
    D.BILL_NOTICE: ("bill_notice",),
    D.SUSPENSION_WARNING: ("suspension_warning",),
    D.SUSPEND: ("suspension_notice_contact", "suspension_notice_manager"),
    D.RESTORE: ("restore_notice",),
    D.PRE_CANCEL: ("pre_cancel_notice", "pre_cancel_notice_manager"),
    D.PAYMENT_REVERSED: ("payment_reversed_notice",),
}
DEDUCTION_NOTICE = "deduction_notice"
# What the report follows per product: the first day of each.
MILESTONES: dict[str, frozenset[DecisionType]] = {
    "warned": frozenset({D.WARNING}),
    "suspension_warned": frozenset({D.SUSPENSION_WARNING}),
    "suspended": frozenset({D.SUSPEND}),
}
SUSPENDED_STATES = (S.SUSPENDED, S.SUSPEND_REQUESTED, S.PRE_CANCEL)


def templates(d: Decided) -> tuple[str, ...]:
    """The SMS the real system would send for a decision. A deduction decision sends none
    itself (the notifier makes nothing of it): billing's collection does, through
    `credit.deduction_collected`, one notice per product the money paid and none when
    nothing was collected (docs/notifier.md, the deduction notice)."""
    if d.decision is D.WARNING:
        # The text the notifier picks: this ladder's count when it skipped a level.
        return (f"warning_{d.reminder_level or d.warning_level or 1}",)
    if d.decision is D.DEDUCTION:
        return tuple(DEDUCTION_NOTICE for _, fen in d.collected if fen > 0)
    return _TEMPLATES.get(d.decision, ())


@dataclass(frozen=True)
class Side:
    """One table's month."""

    sms: dict[str, int]
    suspended_per_day: dict[date, int]
    decisions: dict[str, int]
    deductions_fen: int  # what the deductions would have collected (not asked)
    arrears_fen: int  # at month end, payments as they came (and this table's deductions)
    suspended_arrears_fen: int  # of the products suspended at month end
    suspended_at_month_end: int


@dataclass(frozen=True)
class ProductChange:
    product_id: str
    account_id: str
    milestone: str  # warned | suspension_warned | suspended
    current: date | None
    draft: date | None

    @property
    def change(self) -> str:
        if self.current is None:
            return "only_draft"
        if self.draft is None:
            return "only_current"
        return "earlier" if self.draft < self.current else "later"


@dataclass(frozen=True)
class Difference:
    current: Side
    draft: Side
    products: tuple[ProductChange, ...]

    @property
    def same(self) -> bool:
        return not self.products and self.current == self.draft


def firsts(decisions: list[Decided]) -> dict[tuple[str, str], tuple[str, date]]:
    """(product, milestone) → (account, the first day)."""
    found: dict[tuple[str, str], tuple[str, date]] = {}
    for d in sorted(decisions, key=lambda d: d.day):
        for name, kinds in MILESTONES.items():
            if d.decision in kinds:
                found.setdefault((d.product_id, name), (d.account_id, d.day))
    return found


def compare(current: Outcome, draft: Outcome, histories: list[AccountHistory]) -> Difference:
    a, b = firsts(current.decisions), firsts(draft.decisions)
    changes = []
    for key in sorted(set(a) | set(b)):
        da, db = a.get(key), b.get(key)
        if da is None or db is None or da[1] != db[1]:
            account = (da or db)[0]  # type: ignore[index]
            changes.append(ProductChange(key[0], account, key[1], da and da[1], db and db[1]))
    extra = _deductions(draft) - _deductions(current)
    return Difference(side(current, histories, Counter()), side(draft, histories, extra),
                      tuple(changes))


def _deductions(o: Outcome) -> Counter[str]:
    """Per account, what the table's deductions (划扣) would have collected (not asked)."""
    found: Counter[str] = Counter()
    for d in o.decisions:
        if d.decision is D.DEDUCTION:
            found[d.account_id] += sum(fen for _, fen in d.collected)
    return found


def side(o: Outcome, histories: list[AccountHistory], extra: Counter[str]) -> Side:
    sms: Counter[str] = Counter()
    for d in o.decisions:
        sms.update(templates(d))
    per_day = Counter(d.day for d in o.decisions if d.decision is D.SUSPEND)
    arrears = suspended_arrears = 0
    for h in histories:
        end = h.points[-1]
        arrears += max(0, end.amount_due_fen - extra.get(h.account_id, 0))
        suspended_arrears += sum(end.product_due(pid) for pid, _ in h.products
                                 if o.states.get(pid) in SUSPENDED_STATES)
    return Side(dict(sorted(sms.items())), dict(sorted(per_day.items())),
                dict(sorted(Counter(d.decision.value for d in o.decisions).items())),
                sum(_deductions(o).values()),
                arrears, suspended_arrears,
                sum(1 for s in o.states.values() if s in SUSPENDED_STATES))


def side_json(s: Side) -> dict[str, Any]:
    return {"sms_per_template": s.sms,
            "suspended_per_day": {d.isoformat(): n for d, n in s.suspended_per_day.items()},
            "decisions": s.decisions, "deductions_fen": s.deductions_fen,
            "arrears_at_month_end_fen": s.arrears_fen,
            "suspended_arrears_at_month_end_fen": s.suspended_arrears_fen,
            "suspended_at_month_end": s.suspended_at_month_end}


def difference_json(diff: Difference) -> dict[str, Any]:
    return {"same": diff.same, "current": side_json(diff.current),
            "draft": side_json(diff.draft),
            "products": [{"product_id": c.product_id, "account_id": c.account_id,
                          "milestone": c.milestone, "change": c.change,
                          "current": c.current.isoformat() if c.current else None,
                          "draft": c.draft.isoformat() if c.draft else None}
                         for c in diff.products]}
