"""Notice outcomes out (`notifier.notices.v1`, domain/outcomes.py): in the transaction that
moved a notice's messages — received (undeliverable, cancelled at once), claimed (cancelled
by the send-time re-check), submitted, dead-lettered, receipted — the notices they belong to
are aggregated again and each outcome not published before goes into the outbox (once per
decision and status: `notifier.notice_outcomes`). Only the templates in
`NOTIFIER_NOTICE_OUTCOME_TEMPLATES` are followed (default: the suspension warning, which
credit-control waits for before it suspends)."""

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.notifier import NOTICES_TOPIC, NoticeOutcome
from common.envelope import wrap

from ..adapters import repository as repo
from ..domain.outcomes import NoticeMessages, outcomes
from ..domain.templates import Role
from .context import NotifierContext

DECISION_SOURCE = "decision:"  # a message's source_id: "decision:<decision id>"


async def publish_outcomes(
    ctx: NotifierContext, conn: AsyncConnection, touched: Iterable[tuple[str, str]]
) -> int:
    """Publish the new outcomes of the notices these (decision, template) messages belong
    to; returns how many."""
    if ctx.outbox is None:
        return 0
    ids = sorted({s for s, template in touched
                  if template in ctx.outcome_templates and s.startswith(DECISION_SOURCE)})
    if not ids:
        return 0
    now = ctx.clock.now()
    window = ctx.windows[Role.GROUP_CONTACT]
    found = []
    for row in await repo.notice_messages(conn, ids, sorted(ctx.outcome_templates)):
        if row.decision_as_of is None or row.decided_at is None:
            continue  # made before these were recorded: no business time to carry
        fields = dict(row._mapping)
        source = fields.pop("source_id")
        n = NoticeMessages(decision_id=source.removeprefix(DECISION_SOURCE), **fields)
        found += [(n, o) for o in outcomes(n, window, now, ctx.receipt_timeout)]
    new = await repo.claim_outcomes(conn, [
        (n.decision_id, o.status.value, n.product_id, n.template, o.at, o.wall_at, o.reason)
        for n, o in found])
    events = [
        (NOTICES_TOPIC, wrap(NoticeOutcome(
            decision_id=n.decision_id, product_id=n.product_id, account_id=n.account_id,
            template=n.template, status=o.status, at=o.at, wall_at=o.wall_at,
            reason=o.reason[:4000], permanent=o.permanent),
            key=n.account_id, source=ctx.source, occurred_at=now))
        for n, o in found if (n.decision_id, o.status.value) in new]
    await ctx.outbox.add_many(conn, events)
    return len(events)
