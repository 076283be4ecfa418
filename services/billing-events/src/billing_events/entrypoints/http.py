"""billing's HTTP API: translate requests into commands, nothing more."""

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from common.auth import Role, authenticate, require
from common.clock import IsoDay, parse_bill_month
from common.errors import Unprocessable
from common.http import IdPath, MonthQuery
from common.idempotency import StoredResponse

from ..adapters.receivables import GroupBy
from ..config import Settings
from ..domain import commands as c
from ..service_layer import handlers, reports
from ..service_layer.context import BillingContext
from . import history as history_routes
from . import late_fees as late_fee_routes

# Master data, charges, bill runs and payments are the billing side's: its staff and services.
BILLING_WRITE = [Depends(require(Role.BILLING))]


def router(ctx: BillingContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authenticate(settings.token_table()))])
    _master_data(api, ctx)
    _money(api, ctx)
    _views(api, ctx)
    api.include_router(late_fee_routes.router(ctx))
    api.include_router(history_routes.router(ctx))  # issue 19: what-if replay's history
    return api


def _master_data(api: APIRouter, ctx: BillingContext) -> None:
    @api.post("/customers", status_code=201, dependencies=BILLING_WRITE)
    async def create_customer(cmd: c.CreateCustomer) -> JSONResponse:
        """Create a group customer (集团客户) with its account manager and contacts."""
        return _answer(await handlers.create_customer(ctx, cmd))

    @api.put("/customers/{customer_id}", dependencies=BILLING_WRITE)
    async def update_customer(customer_id: IdPath, details: c.CustomerDetails) -> JSONResponse:
        """Replace the customer's master data; a real change publishes cause=master_data."""
        return _answer(await handlers.update_customer(ctx, customer_id, details))

    @api.post("/accounts", status_code=201, dependencies=BILLING_WRITE)
    async def open_account(cmd: c.OpenAccount) -> JSONResponse:
        """Open an account (账户) under a customer."""
        return _answer(await handlers.open_account(ctx, cmd))

    @api.post("/products", status_code=201, dependencies=BILLING_WRITE)
    async def add_product(cmd: c.AddProduct) -> JSONResponse:
        """Add a product (产品) to an account: family, vendor, channel."""
        return _answer(await handlers.add_product(ctx, cmd))

    @api.put("/products/{product_id}", dependencies=BILLING_WRITE)
    async def update_product(product_id: IdPath, details: c.ProductDetails) -> JSONResponse:
        """Replace name, family, vendor, channel; a real change publishes cause=master_data."""
        return _answer(await handlers.update_product(ctx, product_id, details))


def _money(api: APIRouter, ctx: BillingContext) -> None:
    @api.post("/charges", status_code=201, dependencies=BILLING_WRITE)
    async def post_charge(cmd: c.PostCharge) -> JSONResponse:
        """Post a charge to a product's bill month (idempotent on charge_id)."""
        return _answer(await handlers.post_charge(ctx, cmd))

    @api.post("/bill-runs", status_code=201, dependencies=BILLING_WRITE)
    async def run_bill(cmd: c.RunBill) -> JSONResponse:
        """Close a bill month: the month's charges become amounts due (出账)."""
        return _answer(await handlers.run_bill(ctx, cmd))

    @api.post("/payments", status_code=201, dependencies=BILLING_WRITE)
    async def record_payment(cmd: c.RecordPayment) -> JSONResponse:
        """Record a payment to an account (idempotent on payment_id)."""
        return _answer(await handlers.record_payment(ctx, cmd))

    @api.post("/reversals", status_code=201, dependencies=BILLING_WRITE)
    async def reverse_payment(cmd: c.ReversePayment) -> JSONResponse:
        """A bounced payment: the bill months it paid are owed again (cause=reversal)."""
        return _answer(await handlers.reverse_payment(ctx, cmd))

    @api.post("/adjustments", status_code=201, dependencies=BILLING_WRITE)
    async def adjust_bill(cmd: c.AdjustBill) -> JSONResponse:
        """Adjust a closed bill month up or down (调账)."""
        return _answer(await handlers.adjust_bill(ctx, cmd))

    @api.post("/write-offs", status_code=201, dependencies=BILLING_WRITE)
    async def write_off(cmd: c.WriteOff) -> JSONResponse:
        """Write off an account's arrears of a bill month (核销)."""
        return _answer(await handlers.write_off(ctx, cmd))

    @api.post("/deposits", status_code=201, dependencies=BILLING_WRITE)
    async def receive_deposit(cmd: c.ReceiveDeposit) -> JSONResponse:
        """Receive a deposit (押金) for an account."""
        return _answer(await handlers.receive_deposit(ctx, cmd))


def _views(api: APIRouter, ctx: BillingContext) -> None:
    @api.get("/customers/{customer_id}")
    async def get_customer(customer_id: IdPath) -> dict[str, Any]:
        """The group customer's master data; 404 for a customer billing does not know."""
        return await handlers.customer_view(ctx, customer_id)

    @api.get("/accounts/{account_id}")
    async def get_account(account_id: IdPath, as_of: IsoDay | None = None) -> dict[str, Any]:
        """Balance, amount due per bill month, aging as of a business day, deposit and
        last payment."""
        return await handlers.account_view(ctx, account_id, as_of)

    @api.get("/receivables")
    async def get_receivables(
        bill_month: MonthQuery, through: MonthQuery | None = None, as_of: IsoDay | None = None,
        by: GroupBy | None = None,
    ) -> dict[str, Any]:
        """Receivables and arrears of closed bill months (bill_month..through), as of the end
        of a business day (default: everything recorded), optionally by family, tier,
        channel, vendor or region (区县分公司). arrears_rate = arrears / receivables."""
        return await reports.receivables_report(
            ctx, _month(bill_month, "bill_month"),
            _month(through, "through") if through else None, as_of, by)


def _month(text: str, field: str) -> date:
    try:
        return parse_bill_month(text)
    except ValueError as exc:
        raise Unprocessable(str(exc), field=field) from exc


def _answer(stored: StoredResponse) -> JSONResponse:
    return JSONResponse(stored.body, status_code=stored.status_code)
