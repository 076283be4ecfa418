"""Sweeps that need an approved preview (issue 19), like a dunning proposal that must be
approved before its activity run.

With `needs_approved_preview` on (`PUT /v1/guard`), a sweep decides only what a credit-admin
approved in its preview (`POST /v1/sweeps/preview/approvals` with the fingerprint they saw):
- at its start, the sweep previews itself; if every decision it would take now is in the
  newest approval for the same moment, it runs, recording that approval on the run, and its
  statement takes only decisions of that approval (sweep_sql `:approved`), also for what
  changes while it runs or when it is resumed after a crash. Decisions approved but no
  longer due (the customer paid meanwhile) simply are not taken: nobody is cut off who was
  not approved, and nobody approved is cut off after paying;
- otherwise nothing is decided: the sweep is held (kind `preview`) with the difference (the
  decisions not approved, the approved ones no longer due), a new preview is looked at and
  approved, and `POST /v1/sweeps/{id}/confirm` runs it after checking again.
An approval of a fingerprint the data no longer gives is refused (409), changing nothing.
"""

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from common.clock import BUSINESS_TZ, ensure_aware
from common.errors import Conflict

from ...adapters import tables as t
from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext
from . import preview

SHOWN = 100  # decision ids listed in a hold's difference


async def approve(ctx: CreditContext, as_of: datetime, seen: str, by: str,
                  note: str) -> dict[str, Any]:
    """Records the approval of the preview as of `as_of` whose fingerprint the approver saw
    (`seen`), if the data still gives it; 409 (nothing stored) if it does not."""
    as_of = ensure_aware(as_of)
    ids = await _ids_now(ctx, as_of)
    now_fp = preview.fingerprint(ids)
    if now_fp != seen:
        raise Conflict(
            f"the sweep as of {as_of.astimezone(BUSINESS_TZ).isoformat()} now decides "
            f"{len(ids)} decisions (fingerprint {now_fp[:12]}), not the preview approved "
            f"({seen[:12]}): look at the preview again", fingerprint=now_fp, total=len(ids))
    approval_id = "PA-" + hashlib.sha256(f"{as_of.isoformat()}|{seen}".encode()).hexdigest()[:20]
    at = ctx.clock.now()
    a = t.preview_approvals
    async with ctx.engine.begin() as conn:
        # Approving an outcome approved before (the data came back to it) makes it the
        # newest approval again: the sweep goes by the newest.
        stmt = pg_insert(a).values(approval_id=approval_id, as_of=as_of, fingerprint=seen,
                                   decision_ids=ids, approved_by=by, approved_at=at, note=note)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=[a.c.approval_id],
            set_={"approved_by": by, "approved_at": at, "note": note}))
        await admin_repo.audit(conn, at, by, "preview_approval", approval_id, "approve",
                               None, {"as_of": as_of.isoformat(), "fingerprint": seen,
                                      "decisions": len(ids), "note": note})
    return {"approval_id": approval_id, "as_of": as_of.astimezone(BUSINESS_TZ).isoformat(),
            "fingerprint": seen, "decisions": len(ids), "approved_by": by}


async def verdict(ctx: CreditContext, as_of: datetime
                  ) -> tuple[dict[str, Any] | None, str | None]:
    """(None, the approval) when the newest approval for `as_of` covers every decision a
    sweep would take now; else (the hold: why, and the difference; the approval or None).
    The sweep then decides within that approval's ids (`approved_ids`), whatever changes
    while it runs or until it is resumed."""
    ids = set(await _ids_now(ctx, as_of))
    async with ctx.engine.connect() as conn:
        a = t.preview_approvals
        row = (await conn.execute(select(a.c.approval_id, a.c.decision_ids)
                                  .where(a.c.as_of == as_of)
                                  .order_by(a.c.approved_at.desc()).limit(1))).first()
    if row is None:
        return {"kind": "preview", "reason": (
            f"needs an approved preview: {len(ids)} decisions, none approved "
            "(GET /v1/sweeps/preview, then POST /v1/sweeps/preview/approvals)"),
            "difference": {"not_approved": len(ids), "no_longer_due": 0,
                           "not_approved_ids": sorted(ids)[:SHOWN]}}, None
    approved = set(row.decision_ids)
    added, dropped = sorted(ids - approved), approved - ids
    if not added:
        return None, row.approval_id
    return {"kind": "preview", "approval_id": row.approval_id, "reason": (
        f"{len(added)} decisions not in the approved preview {row.approval_id} "
        f"({len(dropped)} approved ones no longer due): look at the preview again"),
        "difference": {"not_approved": len(added), "no_longer_due": len(dropped),
                       "not_approved_ids": added[:SHOWN]}}, row.approval_id


async def approved_ids(ctx: CreditContext, approval_id: str) -> list[str]:
    async with ctx.engine.connect() as conn:
        a = t.preview_approvals
        found = (await conn.execute(select(a.c.decision_ids)
                                    .where(a.c.approval_id == approval_id))).scalar_one()
    return list(found)


async def _ids_now(ctx: CreditContext, as_of: datetime) -> list[str]:
    _, decided, _ = await preview.outcome(ctx, as_of)
    return [d["decision_id"] for d in decided]
