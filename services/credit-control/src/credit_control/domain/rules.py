"""The walking skeleton's minimal rules (the full rule table comes with its own issue):

- after a bill run, balance < 0 and an amount due → bill notice (话费通知);
- the 25th, an amount due → suspension warning (停机预警), pay by the month's last day;
- the month's last day, an amount due → suspend (停机);
- nothing due any more → restore a suspended product, or lift the warnings.

Pure functions of a snapshot and the business date; first matching rule wins.
"""

from dataclasses import dataclass
from datetime import date

from common.clock import is_last_day_of_month, last_day_of_month
from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType

S = CreditState
SUSPENSION_WARNING_DAY = 25
BILL_NOTICE_PAY_BY_DAY = 25


@dataclass(frozen=True)
class AccountFacts:
    balance_fen: int
    amount_due_fen: int
    cause: BalanceCause | None = None
    closed_bill_month: str | None = None


@dataclass(frozen=True)
class Intent:
    decision: DecisionType
    rule_id: str
    reason: str
    period: str  # one decision of a kind per product and period: re-runs are harmless
    deadline: date | None = None


def on_balance(
    facts: AccountFacts, state: CreditState, today: date, event_key: str
) -> Intent | None:
    """Rules triggered by a balance event."""
    if facts.amount_due_fen <= 0 and state in (S.SUSPENDED, S.SUSPEND_REQUESTED):
        return Intent(DecisionType.RESTORE, "restore-on-payment",
                      "amount due is 0 after payment", period=event_key)
    if facts.amount_due_fen <= 0 and state in (S.WARNED, S.SUSPENSION_WARNED):
        return Intent(DecisionType.ARREARS_CLEARED, "clear-on-payment",
                      "amount due is 0 before suspension", period=event_key)
    if (facts.cause is BalanceCause.BILL_RUN and facts.balance_fen < 0
            and facts.amount_due_fen > 0 and state in (S.NORMAL, S.WARNED)):
        return Intent(DecisionType.BILL_NOTICE, "bill-notice",
                      f"balance {facts.balance_fen} fen < 0 after the bill run of "
                      f"{facts.closed_bill_month}",
                      period=f"bill:{facts.closed_bill_month}",
                      deadline=today.replace(day=BILL_NOTICE_PAY_BY_DAY)
                      if today.day < BILL_NOTICE_PAY_BY_DAY else last_day_of_month(today))
    return None


def is_calendar_day(today: date) -> bool:
    """A day on which some calendar rule may fire; on other days a sweep has nothing to do."""
    return today.day == SUSPENSION_WARNING_DAY or is_last_day_of_month(today)


def on_sweep(facts: AccountFacts, state: CreditState, today: date) -> Intent | None:
    """Calendar rules, evaluated for `today` (the sweep's as_of in Asia/Shanghai)."""
    if facts.amount_due_fen <= 0:
        return None
    month = today.strftime("%Y-%m")
    if is_last_day_of_month(today) and state in (S.NORMAL, S.WARNED, S.SUSPENSION_WARNED):
        return Intent(DecisionType.SUSPEND, "suspend-month-end",
                      f"amount due {facts.amount_due_fen} fen on the month's last day",
                      period=month)
    if today.day == SUSPENSION_WARNING_DAY and state in (S.NORMAL, S.WARNED):
        return Intent(DecisionType.SUSPENSION_WARNING, "suspension-warning-25th",
                      f"amount due {facts.amount_due_fen} fen on the 25th",
                      period=month, deadline=last_day_of_month(today))
    return None


__all__ = ["AccountFacts", "Intent", "is_calendar_day", "on_balance", "on_sweep"]
