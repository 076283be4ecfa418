"""Scoped emergency freezes (紧急冻结, issue 19): a credit-admin stops automatic suspensions
(and, if asked, suspension warnings) for a scope, with a reason, an approver and an expiry.
For a billing error, a network fault (seed 000: "业务故障造成欠费", a service fault, caused
21 % of the remaining arrears) or a disaster: the products keep their arrears and their
ladder, only the cut-off waits.

What a scope is: everything, or one product family, credit tier, star level, MAS vendor,
sales channel, region (区县分公司, the customer's county branch) or customer. A product is
frozen while a freeze covering it has started, has not ended and has not expired. The
sweep's SQL asks the same question set-wise (adapters/sweep_sql.py `_frozen`);
`tests/integration/test_freeze_sql_parity.py` keeps the two in step.

When a freeze ends (or expires), the products it held back from suspension go through the
notice period again (`ProductCredit.warn_again`): a new suspension warning with a new
deadline, rather than all being cut off at once the next evening. Pure: no I/O.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from common.contracts.snapshots import ProductFamily, Tier

# The longest a freeze may run: a month. Longer needs a new freeze, decided again.
MAX_DAYS = 31
REASON_MIN = 4  # "故障" is 2 characters: a reason says what happened


class Scope(StrEnum):
    ALL = "all"
    FAMILY = "family"
    TIER = "tier"
    STAR_LEVEL = "star_level"
    VENDOR = "vendor"  # MAS vendor: huawei / jiaxun / ruoya
    CHANNEL = "channel"  # the sales channel that sold the product
    CUSTOMER = "customer"
    REGION = "region"  # the customer's county branch (区县分公司), billing's master data


@dataclass(frozen=True)
class Covered:
    """What a freeze's scope is compared with: one product's facts."""

    family: ProductFamily
    tier: Tier
    star_level: int | None
    vendor: str | None
    channel: str | None
    customer_id: str | None
    region: str | None = None


@dataclass(frozen=True)
class Freeze:
    freeze_id: str
    scope: Scope
    value: str | None
    covers_warnings: bool
    starts_at: datetime
    until: datetime
    ended_at: datetime | None = None

    def active(self, at: datetime) -> bool:
        """In force at business time `at` (an ended freeze is over whatever `at` is)."""
        return self.ended_at is None and self.starts_at <= at < self.until

    def covers(self, product: Covered) -> bool:
        if self.scope is Scope.ALL:
            return True
        found = {
            Scope.FAMILY: product.family.value, Scope.TIER: product.tier.value,
            Scope.STAR_LEVEL: None if product.star_level is None else str(product.star_level),
            Scope.VENDOR: product.vendor, Scope.CHANNEL: product.channel,
            Scope.CUSTOMER: product.customer_id, Scope.REGION: product.region,
        }[self.scope]
        return found is not None and found == self.value


def frozen(freezes: list[Freeze], product: Covered, at: datetime,
           warnings: bool = False) -> bool:
    """Whether an automatic suspension (`warnings`: a suspension warning) of this product
    waits at `at`."""
    return any(f.active(at) and (f.covers_warnings or not warnings) and f.covers(product)
               for f in freezes)


def problems(scope: Scope, value: str | None, reason: str, approver: str, created_by: str,
             starts_at: datetime, until: datetime) -> dict[str, str]:
    """Why a new freeze cannot be made, by field (empty: it can)."""
    found: dict[str, str] = {}
    if scope is Scope.ALL and value is not None:
        found["value"] = "a freeze of everything takes no value"
    elif scope is not Scope.ALL and not (value or "").strip():
        found["value"] = f"a {scope.value} freeze needs the {scope.value} it covers"
    elif scope is Scope.FAMILY and value not in {f.value for f in ProductFamily}:
        found["value"] = f"no product family {value!r}: one of {[f.value for f in ProductFamily]}"
    elif scope is Scope.TIER and value not in {t.value for t in Tier}:
        found["value"] = f"no tier {value!r}: one of {[t.value for t in Tier]}"
    elif scope is Scope.STAR_LEVEL and value not in {str(n) for n in range(6)}:
        found["value"] = "a star level is 0 to 5"
    if len(reason.strip()) < REASON_MIN:
        found["reason"] = f"say what happened (at least {REASON_MIN} characters)"
    if approver.strip() == created_by:
        found["approver"] = "another person approves a freeze (four eyes)"
    if until <= starts_at:
        found["until"] = "a freeze ends after it starts"
    elif until - starts_at > timedelta(days=MAX_DAYS):
        found["until"] = f"a freeze runs at most {MAX_DAYS} days: decide again then"
    return found
