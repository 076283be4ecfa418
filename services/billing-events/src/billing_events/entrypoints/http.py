"""billing's HTTP API: translate requests into commands, nothing more."""

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from common.auth import bearer_token
from common.idempotency import StoredResponse

from ..config import Settings
from ..domain import commands as c
from ..service_layer import handlers
from ..service_layer.handlers import BillingContext


def router(ctx: BillingContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(bearer_token(settings.api_token))])

    @api.post("/customers", status_code=201)
    async def create_customer(cmd: c.CreateCustomer) -> JSONResponse:
        return _answer(await handlers.create_customer(ctx, cmd))

    @api.post("/accounts", status_code=201)
    async def open_account(cmd: c.OpenAccount) -> JSONResponse:
        return _answer(await handlers.open_account(ctx, cmd))

    @api.post("/products", status_code=201)
    async def add_product(cmd: c.AddProduct) -> JSONResponse:
        return _answer(await handlers.add_product(ctx, cmd))

    @api.post("/charges", status_code=201)
    async def post_charge(cmd: c.PostCharge) -> JSONResponse:
        return _answer(await handlers.post_charge(ctx, cmd))

    @api.post("/bill-runs", status_code=201)
    async def run_bill(cmd: c.RunBill) -> JSONResponse:
        return _answer(await handlers.run_bill(ctx, cmd))

    @api.post("/payments", status_code=201)
    async def record_payment(cmd: c.RecordPayment) -> JSONResponse:
        return _answer(await handlers.record_payment(ctx, cmd))

    @api.get("/accounts/{account_id}")
    async def get_account(account_id: str) -> dict[str, Any]:
        return await handlers.account_view(ctx, account_id)

    return api


def _answer(stored: StoredResponse) -> JSONResponse:
    return JSONResponse(stored.body, status_code=stored.status_code)
