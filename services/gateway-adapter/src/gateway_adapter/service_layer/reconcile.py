"""Reconciliation and the EMOS cross-month figure."""

import asyncio
import logging
from datetime import datetime, timedelta

from common.clock import BUSINESS_TZ, parse_bill_month
from common.contracts.reconciliation import (
    ChainRepair,
    DifferenceKind,
    EmosCrossMonth,
    ReconciliationReport,
)
from common.errors import ApiError
from common.poll_loop import PollLoop

from ..adapters import repository as repo
from ..adapters.credit_control import DesiredChainSource, DesiredStateUnavailable
from ..domain.faults import next_month_start
from ..domain.reconciliation import compare, cross_month_figure, plan_repairs, with_repairs
from .context import GatewayContext

log = logging.getLogger(__name__)


class CreditControlUnavailable(ApiError):
    status_code = 502
    code = "credit_control_unavailable"


async def reconcile(
    ctx: GatewayContext, *, as_of: datetime | None = None, prefix: str = "",
    stuck_after: timedelta | None = None, source: DesiredChainSource | None = None,
    store: bool = False, repair: bool = False,
) -> ReconciliationReport:
    """Compare credit-control's desired state with the gateway's and return the report.
    `prefix` narrows both sides to products whose id starts with it. Only a `store`d run becomes
    `latest` (credit-control's missed-suspensions KPI), so a narrowed or back-dated look by a
    reader can never stand in for the whole-network figure: storing requires the unscoped run.
    `repair`: settled missed / wrong suspensions are asked of credit-control, which sends the
    desired command again (HTTP: stored runs only; a GET only looks); never back-dated, a
    repair acts now."""
    if store and (prefix or as_of is not None):
        raise ApiError("only a run over every product, as of now, is stored", field="store")
    if repair and as_of is not None:
        raise ApiError("a repair acts now: a back-dated run only looks", field="repair")
    source = source or ctx.desired
    if source is None:
        raise CreditControlUnavailable("no credit-control URL is configured")
    try:
        desired = [d for d in await source.fetch_all()
                   if d.family.uses_chain and d.product_id.startswith(prefix)]
    except DesiredStateUnavailable as exc:
        raise CreditControlUnavailable(str(exc)) from exc
    when = as_of or ctx.clock.now()
    stuck = stuck_after or ctx.stuck_after
    async with ctx.engine.begin() as conn:
        held = await repo.held_states(conn, prefix)
        orders = await repo.open_orders(conn, prefix)
    report = compare(desired, held, orders, when, stuck)
    if repair:
        # Outside the read's transaction: credit-control is asked over HTTP, and it judges
        # each request again under the product's lock (what it saw may have moved since).
        plan = plan_repairs(desired, held, when, stuck)
        asked = await source.repair(plan.requests) if plan.requests else []
        report = with_repairs(report, [*(_kind(r, plan.kinds) for r in asked), *plan.skipped])
    if store:
        async with ctx.engine.begin() as conn:
            await repo.store_reconciliation(conn, report)
    return report


def _kind(repair: ChainRepair, kinds: dict[str, DifferenceKind]) -> ChainRepair:
    """credit-control's answer, with the kind of difference it was asked to repair."""
    return repair.model_copy(update={"kind": kinds.get(repair.product_id)})


async def latest(ctx: GatewayContext) -> ReconciliationReport | None:
    async with ctx.engine.connect() as conn:
        return await repo.latest_reconciliation(conn)


async def emos_cross_month(
    ctx: GatewayContext, month: str, *, as_of: datetime | None = None, prefix: str = "",
) -> EmosCrossMonth:
    try:
        first = parse_bill_month(month)
    except ValueError as exc:
        raise ApiError(str(exc), field="month") from exc
    start = datetime(first.year, first.month, 1, tzinfo=BUSINESS_TZ)
    end = next_month_start(start)
    async with ctx.engine.connect() as conn:
        orders, later, open_after, still_open = await repo.cross_month_counts(
            conn, start, end, as_of or ctx.clock.now(), prefix)
    return cross_month_figure(month, orders, later, open_after, still_open)


async def run_scheduled(ctx: GatewayContext, stop: asyncio.Event, interval_s: float) -> None:
    """The periodic reconciliation: a report every interval, differences logged."""
    async def step() -> bool:
        try:
            report = await reconcile(ctx, store=True, repair=ctx.repair)
        except CreditControlUnavailable as exc:
            log.warning("reconciliation skipped: %s", exc.message)
            return False
        log_report = log.warning if report.total else log.info
        log_report("reconciliation: %d missed suspensions, %d wrong suspensions, "
                   "%d stuck EMOS orders over %d products", report.missed_suspensions,
                   report.wrong_suspensions, report.stuck_emos_orders, report.products_compared)
        if report.repair and (report.repaired or report.not_repaired):
            log.warning("reconciliation repaired %d differences, %d not repaired (%d listed "
                        "with a work order open for a person)", report.repaired,
                        report.not_repaired,
                        sum(1 for r in report.repairs if r.work_order_id is not None))
        return False

    await PollLoop("reconciliation", step, idle_s=interval_s, wait_first=True,
                   backoff_min_s=1.0, backoff_max_s=min(interval_s, 60.0)).run(stop)
