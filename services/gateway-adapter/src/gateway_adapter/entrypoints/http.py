"""gateway-adapter's HTTP API: the simulated gateway's submit, the chain's state, the fault
knobs, reconciliation and the EMOS cross-month figure."""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from common.auth import Role, authenticate, require
from common.clock import BusinessTime, IsoMoment
from common.contracts.reconciliation import EmosCrossMonth, ReconciliationReport
from common.errors import Conflict, NotFound
from common.http import IdPath, MonthQuery

from ..adapters.vendors import ADAPTERS
from ..config import Settings
from ..domain.cmpp import CmppAccount
from ..domain.faults import Faults
from ..service_layer import handlers, reconcile, worker
from ..service_layer.context import GatewayContext


class Submit(BaseModel):
    """One message a MAS server or SMS-direct client asks the industry gateway to send."""

    model_config = ConfigDict(extra="forbid")
    product_id: Annotated[str, Field(min_length=1, max_length=64)]
    recipient: Annotated[str, Field(min_length=1, max_length=32)]
    text: Annotated[str, Field(min_length=1, max_length=1000)]


class CmppAccountBody(BaseModel):
    """An enterprise's CMPP 2.0 login: the shared secret and the MAS product it sends for."""

    model_config = ConfigDict(extra="forbid")
    shared_secret: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
    product_id: Annotated[str, Field(min_length=1, max_length=64)]
    max_connections: Annotated[int, Field(ge=1, le=64)] = 4
    max_rate_per_s: Annotated[float, Field(gt=0, le=100_000)] = 200.0


SourceAddr = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,6}$",
                                 description="Source_Addr, the enterprise code (≤ 6)")]


class AdvanceChain(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: BusinessTime


# The simulated gateway's submit stands for MAS servers and SMS-direct clients: machines.
# The chain and fault knobs are the simulation's test levers: machines and credit admins.
SERVICE_ONLY = [Depends(require(Role.SERVICE))]
ADMIN_ONLY = [Depends(require(Role.CREDIT_ADMIN))]
Prefix = Annotated[str, Query(max_length=64, description="only products whose id starts so")]
AsOf = Annotated[IsoMoment | None, Query()]


def router(ctx: GatewayContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authenticate(settings.token_table()))])

    @api.post("/gateway/submit", dependencies=SERVICE_ONLY)
    async def submit(body: Submit) -> dict[str, Any]:
        """Send through the industry gateway, as a MAS server would: refused while blocked."""
        return await handlers.submit(ctx, body.product_id)

    @api.get("/gateway/submits")
    async def submit_log(
        product_id: Annotated[str, Query(min_length=1, max_length=64)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """The newest submits judged for a product (HTTP and CMPP), oldest first."""
        return await handlers.submit_log(ctx, product_id, limit)

    @api.put("/cmpp/accounts/{source_addr}", dependencies=ADMIN_ONLY)
    async def put_cmpp_account(source_addr: SourceAddr, body: CmppAccountBody
                               ) -> dict[str, Any]:
        """Create or change an enterprise's CMPP login (the secret is never shown back)."""
        await handlers.save_cmpp_account(ctx, CmppAccount(source_addr, **body.model_dump()))
        return _account_view(CmppAccount(source_addr, **body.model_dump()))

    @api.get("/cmpp/accounts/{source_addr}")
    async def get_cmpp_account(source_addr: SourceAddr) -> dict[str, Any]:
        """An enterprise's CMPP login, without its secret."""
        found = await handlers.load_cmpp_account(ctx, source_addr)
        if found is None:
            raise NotFound(f"no CMPP login {source_addr!r}", id=source_addr)
        return _account_view(found)

    @api.get("/products/{product_id}/chain")
    async def chain(product_id: IdPath) -> dict[str, Any]:
        """A product's chain: BOSS, EMOS and gateway states and attempts."""
        return await handlers.chain_view(ctx, product_id)

    @api.post("/chain/advance", dependencies=ADMIN_ONLY)
    async def advance(body: AdvanceChain) -> dict[str, Any]:
        """Run every step due by `as_of` now (time is a parameter)."""
        return {"as_of": body.as_of, "attempts": await worker.advance_all_due(ctx, body.as_of)}

    @api.get("/faults")
    async def get_faults() -> Faults:
        """The simulated chain's injected faults."""
        return await handlers.get_faults(ctx)

    @api.put("/faults", dependencies=ADMIN_ONLY)
    async def put_faults(body: Faults) -> Faults:
        """Inject faults into the simulated chain (for tests and drills)."""
        return await handlers.put_faults(ctx, body)

    @api.delete("/faults", dependencies=ADMIN_ONLY)
    async def reset_faults() -> Faults:
        """Clear the simulated chain's injected faults."""
        return await handlers.reset_faults(ctx)

    @api.get("/vendors")
    async def vendors() -> list[dict[str, Any]]:
        """The gateway vendors' adapters and their quirks."""
        return [{"name": a.name, "quirks": a.quirks, "acknowledges_async": a.acknowledges_async}
                for a in ADAPTERS.values()]

    @api.get("/reconciliation")
    async def reconciliation(
        as_of: AsOf = None, product_prefix: Prefix = "",
        stuck_after_s: Annotated[float | None, Query(gt=0)] = None,
    ) -> ReconciliationReport:
        """Compare what credit-control wants with what the chain holds (looks only)."""
        return await reconcile.reconcile(ctx, as_of=as_of, prefix=product_prefix,
                                         stuck_after=_seconds(stuck_after_s))

    @api.post("/reconciliation/runs", status_code=201, dependencies=ADMIN_ONLY)
    async def run_reconciliation(
        stuck_after_s: Annotated[float | None, Query(gt=0)] = None,
        repair: Annotated[bool | None, Query(
            description="repair settled differences (default: GATEWAY_RECONCILIATION_REPAIR)"
        )] = None,
    ) -> ReconciliationReport:
        """A stored run over every product as of now: what `/reconciliation/latest` answers
        and credit-control's missed-suspensions KPI reads (a GET only looks). It repairs
        settled missed / wrong suspensions through credit-control unless `repair=false` or
        the setting is off (then `repair=true` is a 409)."""
        if repair and not ctx.repair:
            raise Conflict("repair is turned off (GATEWAY_RECONCILIATION_REPAIR=false)",
                           field="repair")
        return await reconcile.reconcile(ctx, stuck_after=_seconds(stuck_after_s), store=True,
                                         repair=ctx.repair if repair is None else repair)

    @api.get("/reconciliation/latest")
    async def latest_reconciliation() -> ReconciliationReport:
        """The latest stored reconciliation run."""
        found = await reconcile.latest(ctx)
        if found is None:
            raise NotFound("no reconciliation has run yet")
        return found

    @api.get("/kpis/emos-cross-month")
    async def emos_cross_month(
        month: MonthQuery, as_of: AsOf = None, product_prefix: Prefix = "",
    ) -> EmosCrossMonth:
        """EMOS orders of a month finished in a later month (延时跨月结单)."""
        return await reconcile.emos_cross_month(ctx, month, as_of=as_of, prefix=product_prefix)

    return api


def _account_view(account: CmppAccount) -> dict[str, Any]:
    return {"source_addr": account.source_addr, "product_id": account.product_id,
            "max_connections": account.max_connections,
            "max_rate_per_s": account.max_rate_per_s}


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)
