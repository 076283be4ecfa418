"""Commands billing accepts. Client-supplied ids make each one idempotent."""

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from common.clock import BusinessMonth, BusinessTime
from common.contracts.bounds import check_bill_month
from common.contracts.snapshots import MasVendor, ProductFamily, Tier
from common.ids import EntityId

from .model import is_mobile_phone

Id = EntityId  # common.ids: the one pattern of ids
Fen = Annotated[StrictInt, Field(gt=0, le=10**13, description="integer fen (分), > 0")]
SignedFen = Annotated[StrictInt, Field(ge=-(10**13), le=10**13,
                                       description="integer fen (分), not 0; < 0 lowers the bill")]

# No C0/C1 control characters (NUL, newlines, tabs, DEL, ...): PostgreSQL refuses NUL in text,
# and the others have no place in a name. Narrow the length per field with another Field(...).
NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f-\x9f]*$"
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARS)]


# Characters that print nothing yet are not spaces: in a name an SMS quotes they hide text,
# or turn the message around (a right-to-left override). Unicode's format characters (Cf:
# zero-width spaces and joiners, direction marks and overrides, the soft hyphen, the BOM, tag
# characters), its line and paragraph separators, and the fillers that render blank.
_BLANK_FILLERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


def _invisible(c: str) -> bool:
    return unicodedata.category(c) in ("Cf", "Zl", "Zp") or c in _BLANK_FILLERS


def _visible(name: str) -> str:
    """A name the SMS quote (集团名称 JTNAME, 产品名称 CPNAME, 客户经理 KHJLNAME): something to
    read, not spaces alone ("您看管集团   的集团产品"), and nothing invisible."""
    hidden = sorted({f"U+{ord(c):04X}" for c in name if _invisible(c)})
    if hidden:
        raise ValueError(f"must not contain invisible characters ({', '.join(hidden)})")
    if not name.strip():
        raise ValueError("must not be blank: the SMS quote it")
    return name


Name = Annotated[Text, AfterValidator(_visible)]


def _mobile(phone: str) -> str:
    if not is_mobile_phone(phone):
        raise ValueError("must be an 11-digit mainland mobile number such as 13800138000")
    return phone


def _utc(at: datetime) -> datetime:
    """One spelling per instant, so an idempotent replay hashes the same whatever offset it was
    written with: naive is Asia/Shanghai wall time (BusinessTime), everything ends up in UTC."""
    return at.astimezone(UTC)


# The patterns repeat the validators in the OpenAPI document only (the validators keep
# their clearer messages), so clients and the property-based HTTP test see valid values.
Phone = Annotated[str, AfterValidator(_mobile), Field(
    examples=["13800138000"], json_schema_extra={"pattern": r"^1[3-9][0-9]{9}$"})]
def _carried_by_events(text: str, info: ValidationInfo) -> str:
    """A bill month travels in every balance event, whose contract carries 1900-01..2999-12:
    one beyond would be accepted here and then fail its bill run (a 500, the charge never
    billed). Refused at the door instead."""
    try:
        check_bill_month(info.field_name or "bill_month", text)
    except ValueError:
        raise ValueError(f"{info.field_name or 'bill_month'} {text} is after 2999-12, the "
                         "last bill month balance events carry") from None
    return text


# A business month that has begun (in simulation mode: any month 2000-01..2999-12, the
# balance events' range within the business months').
BillMonth = Annotated[BusinessMonth, AfterValidator(_carried_by_events)]
# Business time of a write: strict ISO-8601, within the bounds (common.clock.BusinessTime).
Instant = Annotated[BusinessTime, AfterValidator(_utc),
                    Field(examples=["2026-11-02T09:00:00+08:00"])]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonIn(Command):
    name: Annotated[Text, Field(max_length=64), AfterValidator(_visible)]
    phone: Phone


# The county branch (区县分公司) a group customer belongs to, e.g. 南城 or 虎门: a short name.
Region = Annotated[Text, Field(max_length=32, examples=["南城"])]


class CustomerDetails(Command):
    """What a group customer's master data is; PUT /v1/customers/{id} replaces it whole."""

    name: Name
    tier: Tier
    star_level: Annotated[StrictInt, Field(ge=0, le=5)] | None = None
    account_manager: PersonIn
    contacts: Annotated[list[PersonIn], Field(min_length=1, max_length=20)]
    region: Region | None = Field(default=None, description=(
        "the county branch (区县分公司) the customer belongs to; absent: none recorded"))

    @model_serializer(mode="wrap")
    def _region_only_if_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No region, no `region` key: a body written before regions existed keeps its
        idempotency hash (common.idempotency.request_hash), so its replay still answers."""
        data: dict[str, Any] = handler(self)
        if data.get("region") is None:
            data.pop("region", None)
        return data


class CreateCustomer(CustomerDetails):
    customer_id: Id


class OpenAccount(Command):
    account_id: Id
    customer_id: Id


Channel = Annotated[Text, Field(max_length=64, examples=["东莞分公司政企部"])]


class ProductDetails(Command):
    """What can change on a product instance; PUT /v1/products/{id} replaces it whole."""

    name: Name
    family: ProductFamily
    vendor: MasVendor | None = Field(
        default=None, description="required for MAS (huawei, jiaxun, ruoya); absent otherwise")
    channel: Channel | None = None

    @model_validator(mode="after")
    def _vendor_only_for_mas(self) -> "ProductDetails":
        if self.family is ProductFamily.MAS and self.vendor is None:
            raise ValueError("a MAS product needs its vendor: huawei, jiaxun or ruoya")
        if self.family is not ProductFamily.MAS and self.vendor is not None:
            raise ValueError(f"vendor is only for MAS products, not {self.family.value}")
        return self


class AddProduct(ProductDetails):
    product_id: Id
    account_id: Id
    cpno: Id
    # When the product was opened (default now): a base loaded today whose history lies in
    # the past (bill runs, payments back-dated) gives it, so credit-control's product starts
    # normal then, not today, and the history's decisions keep their own dates.
    as_of: Instant | None = None


class PostCharge(Command):
    charge_id: Id
    account_id: Id
    product_id: Id
    bill_month: BillMonth
    amount_fen: Fen
    as_of: Instant | None = None


class RunBill(Command):
    """The monthly bill run (出账): closes a bill month and fixes its receivables."""

    bill_run_id: Id
    bill_month: BillMonth
    as_of: Instant | None = None


class RecordPayment(Command):
    payment_id: Id
    account_id: Id
    amount_fen: Fen
    paid_at: Instant | None = None


def _not_zero(fen: int) -> int:
    if fen == 0:
        raise ValueError("an adjustment of 0 fen changes nothing")
    return fen


Reason = Annotated[Text, Field(max_length=200, examples=["银行退票 (bounced cheque)"])]


class ReversePayment(Command):
    """Take a bounced payment out again: the months it paid are owed again."""

    reversal_id: Id
    payment_id: Id
    reason: Reason
    reversed_at: Instant | None = None


class AdjustBill(Command):
    """调账: correct one product's bill of one month; > 0 adds, < 0 credits it back."""

    adjustment_id: Id
    account_id: Id
    product_id: Id
    bill_month: BillMonth
    amount_fen: Annotated[SignedFen, AfterValidator(_not_zero)]
    reason: Reason
    as_of: Instant | None = None


class WriteOff(Command):
    """核销: take bad debt off the account's dues, oldest bill month first."""

    write_off_id: Id
    account_id: Id
    amount_fen: Fen
    reason: Reason
    as_of: Instant | None = None


class ReceiveDeposit(Command):
    """Money held apart from the balance; only a deduction (划扣) moves it into a payment."""

    deposit_id: Id
    account_id: Id
    amount_fen: Fen
    received_at: Instant | None = None


class ApplyDeduction(Command):
    """credit-control's deduction decision, as billing applies it (once per decision_id)."""

    decision_id: str
    account_id: str
    requested_fen: int
    as_of: datetime
