"""Late fees and disputes over HTTP (docs/billing.md "Late fees"), under the authenticated
`/v1` prefix: the lines for every role, waiving for a credit-admin, disputes for billing
staff and credit-admins."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from common.auth import Principal, Role, require
from common.clock import BusinessTime, ensure_aware, parse_bill_month
from common.errors import Unprocessable
from common.http import IdPath
from common.ids import EntityId

from ..service_layer import late_fees
from ..service_layer.context import BillingContext

CreditAdmin = Annotated[Principal, Depends(require(Role.CREDIT_ADMIN))]
# Billing staff record disputes (a complaint reaches the billing side first); a
# credit-admin may too.
DisputeStaff = Annotated[Principal, Depends(require(Role.BILLING, Role.CREDIT_ADMIN))]
Id = EntityId  # common.ids: the one pattern of ids
Text = Annotated[str, Field(min_length=1, max_length=500)]


class WaiveLateFee(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: Text
    as_of: BusinessTime | None = None


class OpenDispute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dispute_id: Id
    account_id: Annotated[str, Field(min_length=1, max_length=64)]
    product_id: Annotated[str, Field(min_length=1, max_length=64)]
    bill_month: Annotated[str, Field(pattern=r"^\d{4}-\d{2}$")]
    reason: Text
    as_of: BusinessTime | None = None


class ResolveDispute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    resolution: Text
    as_of: BusinessTime | None = None


def router(ctx: BillingContext) -> APIRouter:
    api = APIRouter(tags=["late fees"])

    @api.get("/accounts/{account_id}/late-fees")
    async def account_late_fees(account_id: IdPath) -> list[dict[str, Any]]:
        """The account's late-fee lines (滞纳金), each with its days, base, rate, fee and any
        waiver, in bill order."""
        return await late_fees.lines(ctx, account_id)

    @api.post("/late-fees/{line_id}/waive")
    async def waive(line_id: IdPath, cmd: WaiveLateFee, caller: CreditAdmin) -> dict[str, Any]:
        """Waive a late-fee line (credit-admin, with a reason): an adjustment of its bill."""
        at = ensure_aware(cmd.as_of) if cmd.as_of else ctx.clock.now()
        return await late_fees.waive(ctx, line_id, cmd.reason, caller.subject, at)

    @api.post("/disputes", status_code=201)
    async def open_dispute(cmd: OpenDispute, caller: DisputeStaff) -> dict[str, Any]:
        """A product's bill of a month is disputed: no late fee accrues on it until it is
        resolved (idempotent on dispute_id)."""
        try:
            month = parse_bill_month(cmd.bill_month)
        except ValueError as exc:
            raise Unprocessable(str(exc), field="bill_month") from exc
        at = ensure_aware(cmd.as_of) if cmd.as_of else ctx.clock.now()
        return await late_fees.open_dispute(ctx, {
            "dispute_id": cmd.dispute_id, "account_id": cmd.account_id,
            "product_id": cmd.product_id, "bill_month": month, "reason": cmd.reason,
            "opened_by": caller.subject, "opened_at": at})

    @api.post("/disputes/{dispute_id}/resolve")
    async def resolve(dispute_id: IdPath, cmd: ResolveDispute,
                      caller: DisputeStaff) -> dict[str, Any]:
        """Resolve a dispute: late fees accrue again from the next bill run (the disputed
        days are not charged)."""
        at = ensure_aware(cmd.as_of) if cmd.as_of else ctx.clock.now()
        return await late_fees.resolve_dispute(ctx, dispute_id, cmd.resolution,
                                               caller.subject, at)

    return api
