"""GET /v1/balance-history: a month's balance events per account, recomputed from the ledger
(read-only; credit-control's what-if replay reads it, docs/billing.md)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from common.clock import parse_bill_month
from common.errors import Unprocessable
from common.http import MonthQuery

from ..service_layer import history
from ..service_layer.context import BillingContext


def router(ctx: BillingContext) -> APIRouter:
    api = APIRouter(tags=["balance history"])

    @api.get("/balance-history")
    async def balance_history(
        month: MonthQuery,
        warmup_months: Annotated[int, Query(ge=0, le=history.MAX_WARMUP_MONTHS)] = 0,
        after: Annotated[str, Query(max_length=200)] = "",
        limit: Annotated[int, Query(ge=1, le=history.MAX_PAGE)] = 500,
        channel: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    ) -> dict[str, Any]:
        """Each account's balance events of `month` (and of the `warmup_months` before it) as
        its ledger recomputes them: the opening position, then one point per bill run,
        payment, reversal, adjustment, write-off, deposit or deduction, with the products'
        own amounts due. Accounts in id order, `limit` read a page (those that owed nothing
        in the window are left out); `next_after` pages on. `channel`: only the accounts with
        a product of that sales channel, and only those products."""
        try:
            first = parse_bill_month(month)
        except ValueError as exc:
            raise Unprocessable(str(exc), field="month") from exc
        return await history.balance_history(ctx, first, warmup_months, after, limit,
                                            channel)

    return api
