"""A product's own amount due (docs/credit-control.md, "Per-product amount"). Pure.

The account's facts (amount due against the credit limit, the oldest owing month, the tier)
decide WHEN the ladder moves; a product moves on it only for a debt of its own, and its SMS
quote that amount (billing's allocation: `BalanceChanged.product_dues`).
"""

from common.contracts.billing import BalanceChanged
from common.contracts.credit_control import DecisionType

# Decisions that remind, warn or suspend: only for a product with a debt of its own. A
# reversed payment's notice is one ("目前尚有XX元话费未缴清"): a sibling's bounced payment must
# not put a product that owes nothing back on the ladder with a 0.00 yuan reminder.
SANCTIONS = frozenset({DecisionType.BILL_NOTICE, DecisionType.WARNING,
                       DecisionType.SUSPENSION_WARNING, DecisionType.SUSPEND,
                       DecisionType.PAYMENT_REVERSED})


def product_amount_due(event: BalanceChanged, product_id: str) -> int:
    """The product's own amount due over closed bill months, from the event's `product_dues`.
    An event without them (a producer older than per-product amounts) is read as before:
    the account's amount for each of its products."""
    if not event.product_dues:
        return event.amount_due_fen
    for due in event.product_dues:
        if due.product_id == product_id:
            return due.amount_due_fen
    return 0  # not listed: nothing of the account's debt is this product's


def product_owes(product_amount_due_fen: int) -> bool:
    """Whether a product may be reminded, warned or suspended at all ("目前有0.00元话费未缴清"
    makes no sense, and suspending a paid-up product is 错停)."""
    return product_amount_due_fen > 0


def allowed_on_balance(decision: DecisionType, product_amount_due_fen: int) -> bool:
    return decision not in SANCTIONS or product_owes(product_amount_due_fen)


def allowed_in_sweep(decision: DecisionType, product_amount_due_fen: int) -> bool:
    """The sweep's SQL says the same (adapters/balance_sql.PRODUCT_OWES_SQL): every calendar
    step needs a debt of the product's own, pre-cancellation too. A suspended product whose
    own amount was paid while a sibling still owes stays suspended (restore is account-level)
    but its line is not pre-cancelled when the retention runs out, as one suspended by
    association is not: its pre-cancellation notice would say "因欠费0.00元停用已超过保号期"
    (QA pass 37), and cancelling a paid-up line is the kind of cut-off by mistake the sanctions'
    own-debt rule exists to prevent."""
    return product_owes(product_amount_due_fen)
