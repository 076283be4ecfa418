"""Reconciliation and the EMOS cross-month figure."""

import asyncio
import logging
from datetime import datetime, timedelta

from common.clock import BUSINESS_TZ, parse_bill_month
from common.contracts.reconciliation import EmosCrossMonth, ReconciliationReport
from common.errors import ApiError
from common.poll_loop import PollLoop

from ..adapters import repository as repo
from ..adapters.credit_control import DesiredChainSource, DesiredStateUnavailable
from ..domain.faults import next_month_start
from ..domain.reconciliation import compare, cross_month_figure
from .context import GatewayContext

log = logging.getLogger(__name__)


class CreditControlUnavailable(ApiError):
    status_code = 502
    code = "credit_control_unavailable"


async def reconcile(
    ctx: GatewayContext, *, as_of: datetime | None = None, prefix: str = "",
    stuck_after: timedelta | None = None, source: DesiredChainSource | None = None,
    store: bool = False,
) -> ReconciliationReport:
    """Compare credit-control's desired state with the gateway's and return the report.
    `prefix` narrows both sides to products whose id starts with it. Only a `store`d run becomes
    `latest` (credit-control's missed-suspensions KPI), so a narrowed or back-dated look by a
    reader can never stand in for the whole-network figure: storing requires the unscoped run."""
    if store and (prefix or as_of is not None):
        raise ApiError("only a run over every product, as of now, is stored", field="store")
    source = source or ctx.desired
    if source is None:
        raise CreditControlUnavailable("no credit-control URL is configured")
    try:
        desired = [d for d in await source.fetch_all()
                   if d.family.uses_chain and d.product_id.startswith(prefix)]
    except DesiredStateUnavailable as exc:
        raise CreditControlUnavailable(str(exc)) from exc
    when = as_of or ctx.clock.now()
    async with ctx.engine.begin() as conn:
        held = await repo.held_states(conn, prefix)
        orders = await repo.open_orders(conn, prefix)
        report = compare(desired, held, orders, when, stuck_after or ctx.stuck_after)
        if store:
            await repo.store_reconciliation(conn, report)
    return report


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
            report = await reconcile(ctx, store=True)
        except CreditControlUnavailable as exc:
            log.warning("reconciliation skipped: %s", exc.message)
            return False
        log_report = log.warning if report.total else log.info
        log_report("reconciliation: %d missed suspensions, %d wrong suspensions, "
                   "%d stuck EMOS orders over %d products", report.missed_suspensions,
                   report.wrong_suspensions, report.stuck_emos_orders, report.products_compared)
        return False

    await PollLoop("reconciliation", step, idle_s=interval_s, wait_first=True,
                   backoff_min_s=1.0, backoff_max_s=min(interval_s, 60.0)).run(stop)
