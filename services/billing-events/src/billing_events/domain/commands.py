"""Commands billing accepts. Client-supplied ids make each one idempotent."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from common.clock import parse_bill_month
from common.contracts.snapshots import ProductFamily, Tier

from .model import is_mobile_phone

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Fen = Annotated[StrictInt, Field(gt=0, le=10**13, description="integer fen (分), > 0")]


def _mobile(phone: str) -> str:
    if not is_mobile_phone(phone):
        raise ValueError("must be an 11-digit mainland mobile number such as 13800138000")
    return phone


def _bill_month(text: str) -> str:
    parse_bill_month(text)
    return text


Phone = Annotated[str, AfterValidator(_mobile)]
BillMonth = Annotated[str, AfterValidator(_bill_month), Field(examples=["2026-10"])]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonIn(Command):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    phone: Phone


class CreateCustomer(Command):
    customer_id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
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
    name: Annotated[str, Field(min_length=1, max_length=200)]
    family: ProductFamily
    vendor: Annotated[str, Field(max_length=32)] | None = None


class PostCharge(Command):
    charge_id: Id
    account_id: Id
    product_id: Id
    bill_month: BillMonth
    amount_fen: Fen
    as_of: datetime | None = None


class RunBill(Command):
    """The monthly bill run (出账): closes a bill month and fixes its receivables."""

    bill_run_id: Id
    bill_month: BillMonth
    as_of: datetime | None = None


class RecordPayment(Command):
    payment_id: Id
    account_id: Id
    amount_fen: Fen
    paid_at: datetime | None = None
