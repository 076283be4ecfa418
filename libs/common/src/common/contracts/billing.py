"""billing-events publishes balance events."""

from enum import StrEnum
from typing import ClassVar

import msgspec

from common.envelope import Contract

from .bounds import BillMonth, Fen, Id, Instant, Ref, SequenceNo, check_bill_month
from .snapshots import CustomerSnapshot, ProductSnapshot

BALANCE_TOPIC = "billing.balance.v1"


class BalanceCause(StrEnum):
    CHARGE = "charge"
    BILL_RUN = "bill_run"
    PAYMENT = "payment"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"
    DEDUCTION = "deduction"
    WRITE_OFF = "write_off"  # bad debt written off (核销): dues reduced, nothing collected
    DEPOSIT = "deposit"  # deposit received: deposit_fen changed, the balance did not
    MASTER_DATA = "master_data"  # customer or product changed: new snapshots, same money


class BillMonthDue(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    bill_month: BillMonth  # YYYY-MM
    amount_due_fen: Fen

    def __post_init__(self) -> None:
        check_bill_month("bill_month", self.bill_month)


class ProductDue(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What one product instance of the account owes after the account's credits were
    allocated (docs/billing.md, "Allocation"): `amount_due_fen` over closed bill months,
    `dues` per bill month (oldest first, only months still owing), `unbilled_fen` its
    charges of open months. Summed over the account's products they give the account's
    `amount_due_fen`, `dues` and `unbilled_fen` to the fen."""

    product_id: Id
    amount_due_fen: Fen
    dues: tuple[BillMonthDue, ...] = ()
    unbilled_fen: Fen = 0


class ProductCollected(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How much of a deduction paid one product's arrears (the allocation's share)."""

    product_id: Id
    collected_fen: Fen


class DeductionOutcome(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Billing's answer to credit-control's deduction (划扣) decision: what the deposit covered."""

    decision_id: Ref  # the credit-control decision that asked for it
    requested_fen: Fen
    collected_fen: Fen  # 0 when the deposit was empty; never more than requested or held
    # Which products' arrears the collected money paid (the allocation: the account's oldest
    # bills first, so not always the decision's product), in product id order, only those it
    # paid; summed they give collected_fen. Empty from producers older than it.
    products: tuple[ProductCollected, ...] = ()


class BalanceChanged(Contract, frozen=True, kw_only=True):
    """An account's balance after one change, with all credit-control needs to decide.

    `sequence` grows by one per account and event, so a consumer can drop a stale one.
    Money is integer fen; `balance_fen` < 0 means the account owes.
    """

    event_type: ClassVar[str] = "billing.balance_changed"
    topic: ClassVar[str] = BALANCE_TOPIC

    account_id: Id
    sequence: SequenceNo
    cause: BalanceCause
    as_of: Instant
    balance_fen: Fen
    amount_due_fen: Fen  # sum over closed bill months, never negative
    dues: tuple[BillMonthDue, ...] = ()  # oldest first, only months still owing
    unbilled_fen: Fen = 0  # charges of open bill months
    closed_bill_month: BillMonth | None = None  # set when cause is bill_run
    customer: CustomerSnapshot
    products: tuple[ProductSnapshot, ...] = ()
    deposit_fen: Fen = 0  # deposit held, available for deductions
    last_payment_at: Instant | None = None
    deduction: DeductionOutcome | None = None  # set when cause is deduction
    # Each product of the account, in product id order (empty from producers older than
    # per-product amounts: a consumer then reads the account's figures for every product).
    product_dues: tuple[ProductDue, ...] = ()
    # Added for the rating model (issue 18): what the closed month billed the account
    # (charges and adjustments of `closed_bill_month`), set when cause is bill_run.
    billed_fen: Fen | None = None

    def __post_init__(self) -> None:
        check_bill_month("closed_bill_month", self.closed_bill_month)
