"""Commands billing accepts. Client-supplied ids make each one idempotent."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from common.clock import ensure_aware, parse_bill_month
from common.contracts.snapshots import ProductFamily, Tier

from .model import is_mobile_phone

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Fen = Annotated[StrictInt, Field(gt=0, le=10**13, description="integer fen (分), > 0")]

# No C0/C1 control characters (NUL, newlines, tabs, DEL, ...): PostgreSQL refuses NUL in text,
# and the others have no place in a name. Narrow the length per field with another Field(...).
NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f-\x9f]*$"
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARS)]


def _mobile(phone: str) -> str:
    if not is_mobile_phone(phone):
        raise ValueError("must be an 11-digit mainland mobile number such as 13800138000")
    return phone


def _bill_month(text: str) -> str:
    parse_bill_month(text)
    return text


def _utc(at: datetime) -> datetime:
    """One spelling per instant, so an idempotent replay hashes the same whatever offset it was
    written with: naive is Asia/Shanghai wall time (ensure_aware), everything ends up in UTC."""
    return ensure_aware(at).astimezone(UTC)


Phone = Annotated[str, AfterValidator(_mobile)]
BillMonth = Annotated[str, AfterValidator(_bill_month), Field(examples=["2026-10"])]
Instant = Annotated[datetime, AfterValidator(_utc),
                    Field(examples=["2026-11-02T09:00:00+08:00"])]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonIn(Command):
    name: Annotated[Text, Field(max_length=64)]
    phone: Phone


class CreateCustomer(Command):
    customer_id: Id
    name: Text
    tier: Tier
    star_level: Annotated[StrictInt, Field(ge=0, le=5)] | None = None
    account_manager: PersonIn
    contacts: Annotated[list[PersonIn], Field(min_length=1, max_length=20)]


class OpenAccount(Command):
    account_id: Id
    customer_id: Id


class AddProduct(Command):
    product_id: Id
    account_id: Id
    cpno: Id
    name: Text
    family: ProductFamily
    vendor: Annotated[Text, Field(min_length=0, max_length=32)] | None = None


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
