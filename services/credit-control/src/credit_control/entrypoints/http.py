"""credit-control's HTTP API for operations staff and the gateway's reconciliation."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from common.auth import Principal, authenticate, require
from common.auth import Role as Access
from common.clock import IsoMoment
from common.contracts.credit_control import DecisionType
from common.contracts.gateway import ProvisioningAction
from common.contracts.reconciliation import ChainRepairBatch, ChainRepairResults, DesiredChainPage
from common.contracts.snapshots import ProductFamily
from common.errors import ErrorBody, Unprocessable
from common.http import PEER_UNAVAILABLE, IdPath

from ..adapters.peers import MAX_RENDERED, NoticeRenderer
from ..admin.adapters import admin_repository as admin_repo
from ..admin.entrypoints import clock_http
from ..admin.service_layer import admin, expiries
from ..collections.entrypoints import cases as collection_cases
from ..collections.entrypoints import promises as promises_http
from ..collections.entrypoints import red_list as red_list_review
from ..collections.entrypoints import worklists
from ..config import Settings
from ..credit.domain.commands import (
    AddExemption,
    AddFreeze,
    ApprovePreview,
    AssignWorkOrder,
    ConfirmSweep,
    EndFreeze,
    ExemptionKind,
    FinishWorkOrder,
    PutGuard,
    PutProfile,
    PutRules,
    RemoveExemption,
    Role,
    RunLoop,
    RunSweep,
    WorkOrderKind,
    WorkOrderStatus,
)
from ..credit.entrypoints import reviews
from ..credit.service_layer import (
    approvals,
    chain_repairs,
    freezes,
    notices,
    preview,
    sweeps,
    work_orders,
)
from ..rating.entrypoints import http as rating_http
from ..service_layer.context import CreditContext

Limit = Annotated[int, Query(ge=1, le=1000)]
SweepStatus = Literal["unfinished", "running", "held", "done"]
# The caller, when the route may change credit state: its token's subject goes into the audit.
CreditAdmin = Annotated[Principal, Depends(require(Access.CREDIT_ADMIN))]
Operator = Annotated[Principal, Depends(require(Access.OPERATOR))]
ADMIN_ONLY = [Depends(require(Access.CREDIT_ADMIN))]


def router(ctx: CreditContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authenticate(settings.token_table()))])
    _sweep_routes(api, ctx, settings)
    _freeze_routes(api, ctx)
    _rule_routes(api, ctx)
    _work_order_routes(api, ctx)
    api.include_router(worklists.router(ctx))
    api.include_router(promises_http.router(ctx))  # issue 19: promises to pay
    api.include_router(reviews.router(ctx))
    api.include_router(collection_cases.router(ctx))
    api.include_router(red_list_review.router(ctx))
    api.include_router(rating_http.router(ctx))  # issue 18: the rating model
    api.include_router(clock_http.router(ctx))  # issue 19: the simulation clock

    @api.get("/products/{product_id}/credit")
    async def product_credit(product_id: IdPath, as_of: IsoMoment | None = None) -> dict[str, Any]:
        """`as_of` decides which exemptions count as active (default: now), as in a sweep."""
        return await admin.product_credit(ctx, product_id, as_of)

    @api.get("/notices/unheard")
    async def unheard(as_of: IsoMoment | None = None, after: str = "",
                      limit: Limit = 100) -> dict[str, Any]:
        """Suspensions held by a suspension warning not heard of (docs/rules.md), on the
        business day of `as_of` (default: now)."""
        return await notices.unheard_notices(ctx, as_of or ctx.clock.now(), after, limit)

    @api.get("/provisioning/desired")
    async def desired(after: str | None = None, limit: Limit = 500) -> DesiredChainPage:
        """What credit-control wants the chain to hold per product, page by page."""
        return await admin.desired(ctx, after, limit)

    @api.post("/provisioning/repairs")
    async def repairs(batch: ChainRepairBatch, caller: CreditAdmin) -> ChainRepairResults:
        """Reconciliation's repair of settled differences (lost blocks / restores): each
        product's desired command through the chain again, unless credit-control moved on,
        the closed loop or a work order holds it, or it is not chain-managed (the reason is
        in that item's answer). One outcome per item, in order; audited."""
        return await chain_repairs.repair(ctx, batch, caller.subject)

    @api.post("/provisioning/retries", dependencies=ADMIN_ONLY)
    async def retries(cmd: RunLoop) -> dict[str, int]:
        """Resend chain attempts whose backoff ran out as of a time; count stale ones failed."""
        return await work_orders.run_loop(ctx, cmd.as_of)

    @api.get("/audit")
    async def audit(entity: str | None = None, entity_id: str | None = None,
                    limit: Limit = 100) -> list[dict[str, Any]]:
        """The audit trail of staff changes, newest first."""
        async with ctx.engine.connect() as conn:
            return await admin_repo.audit_entries(conn, entity, entity_id, limit)

    return api


def _freeze_routes(api: APIRouter, ctx: CreditContext) -> None:
    @api.post("/freezes", status_code=201, responses={
        409: {"description": "a freeze with this id exists with other values"}})
    async def add_freeze(cmd: AddFreeze, caller: CreditAdmin) -> dict[str, Any]:
        """Freeze automatic suspensions (and, with covers_warnings, suspension warnings) for
        a scope (all, family, tier, star_level, vendor, channel, customer, region) until
        `until`, with a reason and another person's approval; audited (docs/credit-control.md)."""
        return await freezes.add_freeze(
            ctx, cmd.model_copy(update={"created_by": caller.subject}))

    @api.post("/freezes/{freeze_id}/end")
    async def end_freeze(freeze_id: IdPath, cmd: EndFreeze, caller: CreditAdmin) -> dict[str, Any]:
        """End a freeze: the products it held back from suspension get their suspension
        warning again, with a full notice period, before any suspension."""
        return await freezes.end_freeze(
            ctx, freeze_id, cmd.model_copy(update={"ended_by": caller.subject}))

    @api.get("/freezes")
    async def list_freezes(active_at: IsoMoment | None = None,
                           limit: Limit = 100) -> list[dict[str, Any]]:
        """Freezes, newest first; with `active_at`, only those in force then."""
        return await freezes.freezes_list(ctx, active_at, limit)

    @api.get("/freezes/{freeze_id}")
    async def get_freeze(freeze_id: IdPath) -> dict[str, Any]:
        """One freeze, with how many products it held back per decision."""
        return await freezes.freeze(ctx, freeze_id)

    @api.get("/freezes/{freeze_id}/holds")
    async def freeze_holds(freeze_id: IdPath, limit: Limit = 1000) -> list[dict[str, Any]]:
        """What a freeze held back: product, decision, first and last day, amount due."""
        return await freezes.holds(ctx, freeze_id, limit)


def _sweep_routes(api: APIRouter, ctx: CreditContext, settings: Settings) -> None:
    renderer = NoticeRenderer(settings.notifier_url, settings.peer_token.get_secret_value(),
                              settings.peer_timeout_s)

    @api.post("/sweeps", status_code=201, dependencies=ADMIN_ONLY, responses={
        200: {"description": "an unfinished sweep re-posted: what was left is done"},
        202: {"description": "another process is running this sweep: its progress"},
        503: {"description": "the database is unavailable, or (a new sweep) credit-control "
                             "has not yet applied the balance events published before it: "
                             "nothing was written, retry the same request after Retry-After "
                             "seconds (the body says the lag per partition)",
              "content": {"application/json": {"schema": ErrorBody.model_json_schema()}}}})
    async def run_sweep(cmd: RunSweep) -> JSONResponse:
        """Run the credit sweep as of a business time (idempotent on sweep_id)."""
        stored = await sweeps.run_sweep(ctx, cmd)
        return JSONResponse(jsonable_encoder(stored.body), status_code=stored.status_code)

    @api.get("/sweeps")
    async def list_sweeps(status: SweepStatus | None = None,
                          limit: Limit = 100) -> list[dict[str, Any]]:
        """Sweep runs with their progress, newest first; `unfinished` = running or held."""
        return await sweeps.sweeps_list(ctx, status, limit)

    @api.post("/sweeps/{sweep_id}/confirm", responses={
        202: {"description": "another process is running this sweep: its progress"}})
    async def confirm(sweep_id: IdPath, cmd: ConfirmSweep, caller: CreditAdmin) -> JSONResponse:
        """Confirm a sweep the mass-suspension guard held: its suspensions are made."""
        stored = await sweeps.confirm_sweep(
            ctx, sweep_id, cmd.model_copy(update={"confirmed_by": caller.subject}))
        return JSONResponse(jsonable_encoder(stored.body), status_code=stored.status_code)

    @api.get("/sweeps/holds")
    async def holds(status: str | None = None) -> list[dict[str, Any]]:
        """Sweeps the mass-suspension guard held, with their counts and reason, by status."""
        async with ctx.engine.connect() as conn:
            return await admin_repo.holds(conn, status)

    @api.get("/sweeps/preview", responses=PEER_UNAVAILABLE)
    async def preview_sweep(as_of: IsoMoment, limit: Limit = 100,
                            account_id: Annotated[str | None, Query(max_length=64)] = None,
                            customer_id: Annotated[str | None, Query(max_length=64)] = None,
                            family: ProductFamily | None = None,
                            decision: DecisionType | None = None,
                            region: Annotated[str | None, Query(max_length=64, description=(
                                "only the decisions of this region (区县分公司)"))] = None,
                            channel: Annotated[str | None, Query(max_length=64, description=(
                                "only the decisions of this sales channel"))] = None,
                            sms: Annotated[bool, Query(description=(
                                "also render each listed decision's SMS with the notifier's "
                                f"templates in force (limit at most {MAX_RENDERED})"))] = False,
                            ) -> dict[str, Any]:
        """What a sweep as of `as_of` (e.g. tonight's 20:00) would decide now, without
        deciding anything: counts per decision, family × tier, region, sales channel and
        account manager, amounts, the mass-suspension guard's verdict (held suspensions shown
        apart) and a fingerprint of the exact outcome, for the whole sweep; the first `limit`
        decisions among those matching the filters, with `sms` each with the SMS it would
        send (docs/credit-control.md)."""
        if sms and limit > MAX_RENDERED:
            raise Unprocessable(f"with sms, limit is at most {MAX_RENDERED}: each rendered "
                                "decision is a call to the notifier", field="limit")
        only = {k: v for k, v in {
            "account_id": account_id, "customer_id": customer_id,
            "family": family.value if family else None,
            "decision": decision.value if decision else None,
            "region": region, "channel": channel}.items() if v is not None}
        return await preview.preview_sweep(ctx, as_of, limit, only,
                                           renderer if sms else None)

    @api.post("/sweeps/preview/approvals", status_code=201, responses={
        409: {"description": "the data no longer gives that preview: look at it again"}})
    async def approve_preview(cmd: ApprovePreview, caller: CreditAdmin) -> dict[str, Any]:
        """Approve the preview of a sweep as of `as_of`, by the fingerprint it showed; a
        sweep that needs an approved preview (`PUT /v1/guard`) then decides only that."""
        return await approvals.approve(ctx, cmd.as_of, cmd.fingerprint, caller.subject,
                                       cmd.note)

    @api.get("/sweeps/{sweep_id}")
    async def get_sweep(sweep_id: IdPath) -> dict[str, Any]:
        """One sweep run: its status, decisions and progress."""
        return await sweeps.progress(ctx, sweep_id)

    @api.get("/guard")
    async def guard() -> dict[str, Any]:
        """The mass-suspension guard's settings."""
        return await sweeps.guard_settings(ctx)

    @api.put("/guard")
    async def put_guard(cmd: PutGuard, caller: CreditAdmin) -> dict[str, Any]:
        """Change the mass-suspension guard's settings (recorded in the audit)."""
        return await admin.put_guard(ctx, cmd.model_copy(update={"changed_by": caller.subject}))


def _rule_routes(api: APIRouter, ctx: CreditContext) -> None:
    @api.get("/rules")
    async def get_rules() -> dict[str, Any]:
        """The credit rule table in force, with its version."""
        return await admin.get_rules(ctx)

    @api.put("/rules")
    async def put_rules(cmd: PutRules, caller: CreditAdmin) -> dict[str, Any]:
        """Replace the credit rule table: a new version, checked before it is stored."""
        return await admin.put_rules(ctx, cmd.model_copy(update={"changed_by": caller.subject}))

    @api.get("/profiles/{customer_id}")
    async def get_profile(customer_id: IdPath) -> dict[str, Any]:
        """A customer's credit profile: star level and credit limit."""
        return await admin.get_profile(ctx, customer_id)

    @api.put("/profiles/{customer_id}")
    async def put_profile(customer_id: IdPath, cmd: PutProfile,
                          caller: CreditAdmin) -> dict[str, Any]:
        """Change a customer's credit profile (recorded in the audit). A customer id of the
        ids' pattern: a profile makes the customer known to credit-control."""
        return await admin.put_profile(
            ctx, customer_id, cmd.model_copy(update={"changed_by": caller.subject}))

    @api.post("/exemptions", status_code=201, responses=PEER_UNAVAILABLE)
    async def add_exemption(cmd: AddExemption, caller: CreditAdmin) -> dict[str, Any]:
        """Add a red-list entry or an emergency no-suspension (免停) for a customer or product."""
        return await admin.add_exemption(
            ctx, cmd.model_copy(update={"created_by": caller.subject}))

    @api.post("/exemptions/{exemption_id}/remove")
    async def remove_exemption(
        exemption_id: IdPath, cmd: RemoveExemption, caller: CreditAdmin,
    ) -> dict[str, Any]:
        """End an exemption before its time."""
        return await admin.remove_exemption(ctx, exemption_id, caller.subject)

    @api.post("/exemptions/expiries", dependencies=ADMIN_ONLY)
    async def exemption_expiries(cmd: RunLoop) -> dict[str, Any]:
        """Announce the exemptions run out by `as_of` (an emergency no-suspension's `until`):
        `credit.exemption_changed` (not exempt, as of `until`) for each product of a
        customer no other exemption holds, each expiry once. The closed loop's ticker runs
        it as of the clock; this runs it as of a moment."""
        return await expiries.announce_expiries(ctx, cmd.as_of)

    @api.get("/exemptions")
    async def exemptions(kind: ExemptionKind | None = None, customer_id: str | None = None,
                         active_at: IsoMoment | None = None) -> list[dict[str, Any]]:
        """Exemptions (red list, no-suspension), filtered by kind, customer, active time."""
        async with ctx.engine.connect() as conn:
            return await admin_repo.exemptions_list(
                conn, kind.value if kind else None, customer_id, active_at)


def _work_order_routes(api: APIRouter, ctx: CreditContext) -> None:
    @api.get("/work-orders")
    async def list_work_orders(
        status: WorkOrderStatus | None = None, product_id: str | None = None,
        account_id: str | None = None, customer_id: str | None = None,
        action: ProvisioningAction | None = None, role: Role | None = None,
        assignee: str | None = None, kind: WorkOrderKind | None = None,
        overdue_at: IsoMoment | None = None, limit: Limit = 500,
    ) -> list[dict[str, Any]]:
        """Manual work orders, filtered; `overdue_at` keeps those due before it. A status,
        action, role or kind that does not exist is refused (422 naming the ones that do),
        never answered with an empty list. `kind`: `decision` (a decision's move made by
        hand) or `repair` (reconciliation's repair left for a person)."""
        filters = {"status": status.value if status else None, "product_id": product_id,
                   "account_id": account_id, "customer_id": customer_id,
                   "action": action.value if action else None,
                   "role": role.value if role else None, "assignee": assignee,
                   "kind": kind.value if kind else None}
        async with ctx.engine.connect() as conn:
            return await admin_repo.work_orders(conn, filters, overdue_at, limit)

    @api.get("/work-orders/{work_order_id}")
    async def get_work_order(work_order_id: IdPath) -> dict[str, Any]:
        """One manual work order with its steps."""
        return await work_orders.get(ctx, work_order_id)

    @api.post("/work-orders/{work_order_id}/assign")
    async def assign(work_order_id: IdPath, cmd: AssignWorkOrder,
                     caller: Operator) -> dict[str, Any]:
        """Take or assign a work order to a person and role."""
        return await work_orders.assign(ctx, work_order_id, caller.subject, cmd.assignee, cmd.role,
                                        cmd.note, ctx.clock.now())

    @api.post("/work-orders/{work_order_id}/done")
    async def done(work_order_id: IdPath, cmd: FinishWorkOrder, caller: Operator) -> dict[str, Any]:
        """Close a work order as done: the chain step was made by hand."""
        return await work_orders.finish(ctx, work_order_id, caller.subject, True, cmd.note,
                                        ctx.clock.now())

    @api.post("/work-orders/{work_order_id}/fail")
    async def fail(work_order_id: IdPath, cmd: FinishWorkOrder, caller: Operator) -> dict[str, Any]:
        """Close a work order as failed: it could not be done by hand."""
        return await work_orders.finish(ctx, work_order_id, caller.subject, False, cmd.note,
                                        ctx.clock.now())
