"""Exemptions that run out: announced once to the notifier (docs/credit-control.md
"Profiles & exemptions"). An emergency no-suspension (or a red list with an expiry) ends at
its `until` with no one acting; this job, run by the closed loop's ticker
(credit/service_layer/sweeps.py loop_ticker) and on demand as of a moment
(`POST /v1/exemptions/expiries {as_of}`), finds those run out and not yet announced and
publishes `credit.exemption_changed` (not exempt, as of `until`) for each product of a
customer no other exemption still holds (domain/expiries.py).

Once and crash-safe: each exemption's marker (`expiry_announced_at`, migration 0035) is set
in the transaction that writes the announcement's outbox rows, so a crash announces all of a
batch or none of it, and a second process or a re-run announces nothing again. A customer's
exemptions are added, removed and announced one transaction at a time
(admin_repository.lock_customers), so the last word published about a customer's products
says what holds."""

import logging
from datetime import datetime
from typing import Any

from common.clock import ensure_aware
from common.contracts.credit_control import ExemptionChanged

from ...service_layer.context import CreditContext, publish
from ..adapters import admin_repository as admin_repo
from ..domain.expiries import EXPIRY_ACTOR, announcements

log = logging.getLogger(__name__)
BATCH = 200  # customers' exemptions per transaction


async def announce_expiries(ctx: CreditContext, as_of: datetime,
                            batch: int = BATCH) -> dict[str, Any]:
    """Every exemption run out by `as_of` and not announced: announced (or, while another
    exemption holds its customer, only marked), batch by batch. Returns what it did."""
    as_of = ensure_aware(as_of)
    expired: list[dict[str, Any]] = []
    events, more = 0, True
    while more:
        done, published, more = await _batch(ctx, as_of, batch)
        expired += done
        events += published
    if expired:
        log.info("exemptions run out by %s: %d, %d products told", as_of.isoformat(),
                 len(expired), events)
    return {"as_of": as_of.isoformat(), "expired": expired, "published": events}


async def _batch(ctx: CreditContext, as_of: datetime,
                 batch: int) -> tuple[list[dict[str, Any]], int, bool]:
    """One transaction: up to `batch` run-out exemptions (all of their customers'); whether
    there may be more."""
    async with ctx.engine.begin() as conn:
        found = await admin_repo.run_out_exemptions(conn, as_of, batch)
        if not found:
            return [], 0, False
        customers = sorted({r.customer_id for r in found})
        await admin_repo.lock_customers(conn, customers)
        # Read again under the customers' locks: another process may have announced them,
        # or staff removed one, meanwhile.
        run_out = await admin_repo.run_out_exemptions(conn, as_of, customer_ids=customers)
        profiles = await admin_repo.profiles_for(conn, customers)
        still = {c for c, p in profiles.items() if p.suspension_exempt(as_of)}
        told = announcements(run_out, still)
        published = 0
        for a in told:
            for row in await admin_repo.products_of_customer(conn, a.customer_id):
                await publish(ctx, conn, row.account_id, ExemptionChanged(
                    account_id=row.account_id, product_id=row.product_id,
                    customer_id=a.customer_id, exemption_id=a.exemption_id, as_of=a.as_of,
                    suspension_exempt=False))
                published += 1
        await admin_repo.mark_expiry_announced(conn, [r.exemption_id for r in run_out], as_of)
        announced = {a.customer_id for a in told}
        done = []
        for r in run_out:
            outcome = ("announced: not exempt any more" if r.customer_id in announced
                       else "still exempt: another exemption holds the customer")
            await admin_repo.audit(conn, as_of, EXPIRY_ACTOR, r.kind, r.customer_id, "expire",
                                   {"exemption_id": r.exemption_id,
                                    "until": r.until.isoformat()}, {"outcome": outcome})
            done.append({"exemption_id": r.exemption_id, "customer_id": r.customer_id,
                         "kind": r.kind, "until": r.until.isoformat(),
                         "announced": r.customer_id in announced})
    return done, published, len(found) == batch
