"""Credit events in, messages written (held, pending, undeliverable or cancelled), in the
consumer's transaction with its inbox claim: a redelivered event adds nothing, and the message
ids (decision, recipient, template; for what a deduction collected: the deduction, the
product, recipient, template) make a re-published event add nothing either.

Each event gets a notifier-wide sequence number and a decision or state change is folded
into what the notifier knows of its product (`notifier.product_states`, domain/recheck.py;
what a deduction collected changes no fact: its notice is a fact itself); the product's
waiting messages are re-checked against the new facts in the same transaction (a payment
during quiet hours cancels the held reminders at once), and the sender re-checks again as
they leave.

The messages of a batch are gathered column by column (`repo.MessageColumns`) and written
with one `INSERT … SELECT FROM unnest(…)`: no dict per message, one statement per batch.
Each keeps the fields it was rendered from, so that a `credit.product_amount_changed` in the
same or a later batch can give the product's waiting notices its new own amount, or cancel
them when it owes nothing of its own (domain/revision.py): one read and one update per
batch, after the batch's messages are written and re-checked. The same read and update
render a waiting warning_3 again as warning_3_exempt when a `credit.exemption_changed`
makes its product exempt (no threat of a suspension that will not follow), before the
re-check."""

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditEvent,
    DeductionCollected,
    ExemptionChanged,
    ProductAmountChanged,
    SuspensionDeferred,
)
from common.envelope import RawEnvelope
from common.outbox import wake_after_commit

from ..adapters import repository as repo
from ..domain.delivery import phone_problem
from ..domain.kpis import reminder_bill_month
from ..domain.notices import EXEMPT_VARIANTS, Notice, NoticeEvent, notices_for
from ..domain.outcomes import sending_as_of
from ..domain.quiet_hours import SendingWindow, release_at
from ..domain.recheck import KIND_OF, ProductFacts, cancel_on_receipt, fold
from ..domain.revision import (
    NOTHING_OWED_REASON,
    REVISED_TEMPLATES,
    Revised,
    Waiting,
    exempt_revisions,
    fields_from,
    fields_json,
    revisions,
)
from ..domain.templates import TemplateName, render, segments
from .context import NotifierContext
from .outcomes import publish_outcomes

__all__ = ["CreditEvent", "NotifierEvent", "apply_credit_events"]

# What the notifier consumes on credit.decisions.v1: the decisions and state changes that
# make messages, what a deduction really collected (the deduction notice), the amount
# changes that revise the messages not sent yet, and the exemptions added or removed that
# make a waiting suspension warning an empty threat.
NotifierEvent = (CreditEvent | DeductionCollected | ProductAmountChanged | ExemptionChanged
                 | SuspensionDeferred)


async def apply_credit_events(
    ctx: NotifierContext, conn: AsyncConnection,
    events: Sequence[tuple[RawEnvelope, NotifierEvent]],
) -> int:
    """A batch of events → its messages, in one statement; the products' facts updated and
    their waiting messages re-checked against them, then given the products' new amounts.
    Returns how many messages were made."""
    templates = await repo.current_templates(conn)
    cols = repo.MessageColumns()
    now = ctx.clock.now()
    # Every event takes a number, amount changes and deductions collected too: "made before
    # it" is a lower number.
    seqs = await repo.next_event_seqs(conn, len(events))
    facts: dict[str, tuple[str, ProductFacts]] = {}
    # Per product, its newest amount change of the batch: it says what the product owes
    # now, to every message made before it (events come in order per product).
    changes: dict[str, tuple[int, ProductAmountChanged]] = {}
    # Per product, its newest exemption change of the batch when no credit event of it came
    # later in the batch (a decision's own context says whether it is exempt).
    exempt: dict[str, bool] = {}
    # The products an exemption change of the batch made exempt (its last one said so).
    became_exempt: set[str] = set()
    # Per product, its newest deferral of the batch not folded into the batch's facts.
    deferred: dict[str, int] = {}
    for (env, view), seq in zip(events, seqs, strict=True):
        if isinstance(view, ProductAmountChanged):
            changes[view.product_id] = (seq, view)
            continue
        if isinstance(view, SuspensionDeferred):
            _deferral(facts, deferred, view, seq)
            continue
        if isinstance(view, ExemptionChanged):
            _exemption(facts, exempt, view)
            if view.suspension_exempt:
                became_exempt.add(view.product_id)
            else:
                became_exempt.discard(view.product_id)
            continue
        if not isinstance(view, DeductionCollected):
            known = facts.get(view.product_id)
            facts[view.product_id] = (view.account_id,
                                      fold(known[1] if known else None, view, seq))
            exempt.pop(view.product_id, None)
        for n in notices_for(view):
            _add_message(cols, n, view, seq, env.occurred_at, templates[n.template], now,
                         ctx.windows[n.role])
    if cols.message_id:
        await repo.insert_messages(conn, cols)
    await repo.upsert_product_states(conn, facts)
    await repo.set_suspension_exempt(conn, exempt)
    await repo.set_withdrawn(conn, deferred)
    # Notices lost at once (no valid number, exempt) or cancelled by these events: their
    # outcome goes out with them.
    touched = [(s, t) for s, t, st in zip(cols.source_id, cols.template, cols.status,
                                          strict=True) if st in ("undeliverable", "cancelled")]
    # Before the re-check, which would cancel a threat it finds (recheck.RULES): rendered
    # without the threat it is still a true reminder.
    await _withdraw_threats(conn, [p for p in sorted(became_exempt) if _exempt_now(
        p, facts, exempt)], seqs[-1] + 1 if seqs else 0, templates, now)
    await repo.cancel_stale(conn, [*facts, *exempt, *deferred], now, touched)
    await _revise_amounts(conn, changes, now, touched)
    await publish_outcomes(ctx, conn, touched)
    if cols.message_id and ctx.wake is not None:
        wake_after_commit(conn, ctx.wake)  # after the consumer's commit: the sender finds them
    return len(cols.message_id)


def _exemption(facts: dict[str, tuple[str, ProductFacts]], exempt: dict[str, bool],
               event: ExemptionChanged) -> None:
    """A product's exemption changed: into its facts of this batch, or to be set on its
    stored facts (a product the notifier has no facts of has no message waiting)."""
    known = facts.get(event.product_id)
    if known is not None:
        facts[event.product_id] = (known[0], replace(
            known[1], suspension_exempt=event.suspension_exempt))
    else:
        exempt[event.product_id] = event.suspension_exempt


def _deferral(facts: dict[str, tuple[str, ProductFacts]], deferred: dict[str, int],
              event: SuspensionDeferred, seq: int) -> None:
    """A promise to pay defers the product's suspension: its suspension warnings made before
    it stopped counting (`withdrawn_seq`, the re-check's rule), into its facts of this batch
    or onto its stored facts (a product the notifier has no facts of has no message
    waiting)."""
    known = facts.get(event.product_id)
    if known is not None:
        facts[event.product_id] = (known[0], replace(known[1], withdrawn_seq=seq))
    else:
        deferred[event.product_id] = seq


def _exempt_now(product_id: str, facts: dict[str, tuple[str, ProductFacts]],
                exempt: dict[str, bool]) -> bool:
    """Whether the batch leaves the product exempt: its facts of the batch (a credit event
    after the exemption change says so in its context), else the change's own word."""
    known = facts.get(product_id)
    return known[1].suspension_exempt if known is not None else exempt.get(product_id, False)


async def _withdraw_threats(
    conn: AsyncConnection, products: list[str], below_seq: int,
    templates: dict[TemplateName, tuple[int, str]], now: datetime,
) -> None:
    """The waiting messages threatening a suspension (warning_3) of products the batch made
    exempt: rendered again as the exempt variant (warning_3_exempt), same product, amount
    and date, its reason noting why; one claimed for sending is given it as a pending
    revision (settled by its submit's outcome, as an amount revision is). Every such message
    of the product, whichever event made it: the product is exempt now, so none of them may
    leave with the threat. Through the amount revision's read and update."""
    if not products:
        return
    found = await repo.waiting_to_revise(conn, dict.fromkeys(products, below_seq),
                                         sorted(EXEMPT_VARIANTS))
    waiting = [_waiting(r) for r in found]
    await repo.revise_messages(conn, now, _columns(exempt_revisions(waiting, templates)))


def _waiting(row: Any) -> Waiting:
    """A row of `repo.waiting_to_revise` as the revisions see it."""
    return Waiting(row.message_id, fields_from(row.fields), row.template_text, row.cancelling,
                   row.template)


def _columns(revised: Iterable[Revised]) -> repo.RevisedColumns:
    cols = repo.RevisedColumns()
    for r in revised:
        cols.ids.append(r.message_id)
        cols.texts.append(r.text)
        cols.segments.append(r.segments)
        cols.fields.append(fields_json(r.fields) if r.fields is not None else None)
        cols.reasons.append(None if r.fields is not None else NOTHING_OWED_REASON)
        cols.templates.append(r.template.value if r.template is not None else None)
        cols.versions.append(r.template_version)
        cols.notes.append(r.note)
    return cols


async def _revise_amounts(
    conn: AsyncConnection, changes: dict[str, tuple[int, ProductAmountChanged]],
    now: datetime, touched: list[tuple[str, str]],
) -> None:
    """The products' waiting messages made before their newest amount change: rendered again
    with the new amounts, or cancelled when the product owes nothing of its own; those
    claimed for sending are given it as a pending revision, settled by their submit's
    outcome (sending.py)."""
    found = await repo.waiting_to_revise(conn, {p: seq for p, (seq, _) in changes.items()},
                                         sorted(REVISED_TEMPLATES))
    by_product: dict[str, list[Waiting]] = {}
    for row in found:
        by_product.setdefault(row.product_id, []).append(_waiting(row))
    cols = _columns(r for product_id, waiting in by_product.items()
                    for r in revisions(waiting, changes[product_id][1]))
    await repo.revise_messages(conn, now, cols, touched)


def _add_message(
    cols: repo.MessageColumns, n: Notice, event: NoticeEvent, seq: int,
    decided_at: datetime, template: tuple[int, str], now: datetime, window: SendingWindow,
) -> None:
    version, text = template
    rendered = render(text, n.fields)
    problem = phone_problem(n.recipient_phone)
    stale = None if problem else cancel_on_receipt(n.template, event)
    # Quiet hours by the decision's business time (domain/quiet_hours.release_at); a
    # catch-up's, by when it was really made (domain/outcomes.sending_as_of).
    as_of = sending_as_of(event.as_of, event.caught_up_at
                          if isinstance(event, CreditDecisionMade) else None)
    hold = None if problem or stale else release_at(window, as_of, now)
    cols.message_id.append(n.message_id)
    cols.source_id.append(n.source_id)
    cols.product_id.append(event.product_id)
    cols.account_id.append(event.account_id)
    cols.template.append(n.template.value)
    cols.role.append(n.role.value)
    cols.recipient_name.append(n.recipient_name)
    cols.recipient.append(n.recipient_phone)
    cols.text.append(rendered)
    cols.segments.append(segments(rendered))
    cols.status.append("undeliverable" if problem else "cancelled" if stale
                       else "held" if hold else "pending")
    cols.status_reason.append(problem or stale or (
        f"quiet hours: held until {hold.isoformat()}" if hold else None))
    # Not before it was made: a sender whose clock is behind (a replay, a test in another
    # year) leaves it alone.
    cols.next_attempt_at.append(None if problem or stale else hold or now)
    cols.template_version.append(version)
    cols.trigger.append(n.trigger)
    cols.reminder.append(n.reminder)
    cols.bill_month.append(_bill_month(event) if n.reminder else None)
    cols.decided_at.append(decided_at)
    cols.event_seq.append(seq)
    cols.decision_as_of.append(as_of)
    cols.recheck.append(KIND_OF[n.template].value)
    cols.cancelled_at.append(now if stale else None)
    cols.fields.append(fields_json(n.fields))


def _bill_month(event: NoticeEvent) -> str:
    # credit-control may carry the bill month one day; until then it follows from the date.
    explicit = event.context.bill_month or getattr(event, "bill_month", None)
    return str(explicit) if explicit else reminder_bill_month(event.context.as_of_date)

