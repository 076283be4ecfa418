"""Master-data snapshots carried inside events, so consumers need no read-back into billing."""

from datetime import date
from enum import StrEnum

import msgspec

from .bounds import Id, Name, SmallInt


class Tier(StrEnum):
    """Seed 000's credit tiers (低/中/高信用度)."""

    LOW = "low"
    MID = "mid"
    HIGH = "high"


class ProductFamily(StrEnum):
    ADC = "ADC"  # 即开即通: BOSS flips the status
    MAS = "MAS"  # 企业信息机: BOSS → EMOS → industry gateway
    SMS_DIRECT = "SMS_DIRECT"  # 短信直联: same chain as MAS
    WORK_ORDER = "WORK_ORDER"  # 工单流转型: manual work order

    @property
    def uses_chain(self) -> bool:
        return self in (ProductFamily.MAS, ProductFamily.SMS_DIRECT)


class MasVendor(StrEnum):
    """The three CRM-MAS vendors of seed 000 (华为, 嘉讯, 若雅)."""

    HUAWEI = "huawei"
    JIAXUN = "jiaxun"
    RUOYA = "ruoya"


class Person(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    name: Name
    phone: Name


class CustomerSnapshot(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A group customer (集团客户) as billing knew it when the event was written."""

    customer_id: Id
    name: Name  # JTNAME
    tier: Tier
    star_level: SmallInt | None = None
    account_manager: Person  # KHJLNAME and phone
    contacts: tuple[Person, ...] = ()
    # Added for the rating model (issue 18, docs/rating.md); absent from older producers.
    opened_on: date | None = None  # when the customer was opened (网龄, tenure)
    value_class: Name | None = None  # group value class A/B/C/D: the rating's "brand"
    # Added for scoped freezes and reports by region (issue 19); absent from older producers.
    region: Name | None = None  # the county branch (区县分公司) the customer belongs to


class ProductSnapshot(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    product_id: Id
    cpno: Id  # 产品编号 CPNO
    name: Name  # CPNAME
    family: ProductFamily
    vendor: Name | None = None  # MAS: huawei / jiaxun / ruoya
    channel: Name | None = None  # the sales channel that sold it (arrears by channel)
