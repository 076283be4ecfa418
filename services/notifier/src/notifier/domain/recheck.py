"""Send-time re-check: does a message's reason still hold when it is about to leave? Pure.

The notifier keeps, per product, what it last heard from credit-control (`ProductFacts`,
folded from the decisions and state changes in the order they were published: keyed by
account, so in order per product). Every credit event gets a notifier-wide sequence number
(`event_seq`) when it is received; a message carries the number of the event that made it.
"Since the decision" therefore means "in an event with a higher number".

The rules are data (`RULES`, first match wins): the pure `cancel_reason` below reads them for
the unit tests and the invariant checker, and the sender's claim SQL is generated from the
same tuple (adapters/repository.py), so the two cannot drift apart.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from common.contracts.credit_control import CreditEvent, CreditState, DeductionCollected

from .revision import NOTHING_OWED_REASON, REVISED_TEMPLATES
from .templates import TemplateName

T = TemplateName


class Recheck(StrEnum):
    """What a message is about, which decides what makes it stale."""

    REMINDER = "reminder"  # the arrears ladder: bill notice, warnings, suspension warning
    REVERSAL = "reversal"  # a reversed payment re-opened arrears
    SUSPENSION = "suspension"  # 停机通知 A / B
    RESTORE = "restore"  # 开机通知
    PRE_CANCEL = "pre_cancel"  # 预拆机通知
    FACT = "fact"  # a deduction collected: true whatever happens next, never stale


KIND_OF: dict[TemplateName, Recheck] = {
    T.BILL_NOTICE: Recheck.REMINDER,
    T.WARNING_1: Recheck.REMINDER,
    T.WARNING_2: Recheck.REMINDER,
    T.WARNING_3: Recheck.REMINDER,
    T.WARNING_3_EXEMPT: Recheck.REMINDER,
    T.SUSPENSION_WARNING: Recheck.REMINDER,
    T.PAYMENT_REVERSED_NOTICE: Recheck.REVERSAL,
    T.SUSPENSION_NOTICE_CONTACT: Recheck.SUSPENSION,
    T.SUSPENSION_NOTICE_MANAGER: Recheck.SUSPENSION,
    T.SUSPENSION_NOTICE_MANAGER_ACCOUNT: Recheck.SUSPENSION,
    T.RESTORE_NOTICE: Recheck.RESTORE,
    T.PRE_CANCEL_NOTICE: Recheck.PRE_CANCEL,
    T.PRE_CANCEL_NOTICE_MANAGER: Recheck.PRE_CANCEL,
    T.DEDUCTION_NOTICE: Recheck.FACT,
}


@dataclass(frozen=True)
class ProductFacts:
    """What the notifier last heard about one product."""

    state: CreditState
    event_seq: int  # the newest event about it
    as_of: datetime  # that event's business time
    decision_id: str
    normal_seq: int | None = None  # the last return to normal (arrears cleared, restored)
    suspended_seq: int | None = None  # the last confirmed suspension
    cycle_seq: int | None = None  # the current arrears cycle began (the product left normal)
    # The last time its suspension warning stopped counting with no decision (suspension_warned
    # → warned: the ladder restarted, an upgrade voided it; credit.suspension_deferred: a
    # promise to pay deferred the suspension).
    withdrawn_seq: int | None = None
    suspension_exempt: bool = False  # as of the newest event
    bill_month: str | None = None  # the oldest bill month owing, as of the newest event


def fold(facts: ProductFacts | None, event: CreditEvent, seq: int) -> ProductFacts:
    """The facts after one more event (events arrive in order per product)."""
    before, after = event.state_before, event.state_after
    base = facts or ProductFacts(after, seq, event.as_of, event.decision_id)
    left_normal = before is CreditState.NORMAL and after is not CreditState.NORMAL
    return replace(
        base, state=after, event_seq=seq, as_of=event.as_of, decision_id=event.decision_id,
        normal_seq=seq if after is CreditState.NORMAL and before is not CreditState.NORMAL
        else base.normal_seq,
        suspended_seq=seq if after is CreditState.SUSPENDED and before is not after
        else base.suspended_seq,
        cycle_seq=seq if left_normal else base.cycle_seq,
        withdrawn_seq=seq if before is CreditState.SUSPENSION_WARNED
        and after is CreditState.WARNED else base.withdrawn_seq,
        suspension_exempt=event.context.suspension_exempt,
        bill_month=event.context.bill_month or base.bill_month,
    )


@dataclass(frozen=True)
class SinceRule:
    """Cancel a message of one of `kinds` (or, given, of `templates`) if the product's `fact`
    happened after it."""

    kinds: frozenset[Recheck]
    fact: str  # a ProductFacts field holding an event_seq: normal_seq | suspended_seq …
    reason: str
    templates: frozenset[TemplateName] = frozenset()


@dataclass(frozen=True)
class ExemptRule:
    """Cancel these templates while the product is exempt from suspension."""

    templates: frozenset[TemplateName]
    reason: str


@dataclass(frozen=True)
class NewerRule:
    """Cancel a message of `kinds` when a newer message (not cancelled) of `by` kinds, about
    the same product, to the same recipient, is waiting or gone: it says what holds now."""

    kinds: frozenset[Recheck]
    by: frozenset[Recheck]
    reason: str  # the newer message's template is appended


Rule = SinceRule | ExemptRule | NewerRule
R = Recheck
EXEMPT_REASON = "exempt: no suspension will follow"
RULES: tuple[Rule, ...] = (
    SinceRule(frozenset({R.REMINDER, R.REVERSAL}), "normal_seq",
              "arrears cleared since the decision: the product is back to normal"),
    SinceRule(frozenset({R.SUSPENSION, R.PRE_CANCEL}), "normal_seq",
              "restored since the decision"),
    SinceRule(frozenset({R.RESTORE}), "suspended_seq", "suspended again since the restore"),
    # The threat's date is void once its warning stopped counting (credit-control's
    # suspension_warned → warned with no decision, or a promise to pay deferring the
    # suspension); a new warning, if owed, names its own.
    SinceRule(frozenset(), "withdrawn_seq",
              "the suspension warning stopped counting since the decision (the arrears ladder "
              "restarted, an upgrade voided it, or a promise to pay deferred the suspension): "
              "no suspension on the date it names",
              templates=frozenset({T.SUSPENSION_WARNING})),
    SinceRule(frozenset({R.REMINDER, R.REVERSAL}), "suspended_seq",
              "superseded: the product was suspended since the decision"),
    # An exempt product is threatened with no suspension. A waiting warning_3 is rendered
    # again as warning_3_exempt when its product becomes exempt (domain/revision.py
    # exempt_revisions), so this cancels only one that could not be (made before migration
    # 0008, no stored fields): the last check before a threat leaves.
    ExemptRule(frozenset({T.SUSPENSION_WARNING, T.WARNING_3}), EXEMPT_REASON),
    # The newest reminder carries the amount and the date that hold now; a reversal notice
    # says why the product owes again, so a ladder reminder does not replace it.
    NewerRule(frozenset({R.REMINDER}), frozenset({R.REMINDER, R.REVERSAL}),
              "superseded by a newer notice: "),
    NewerRule(frozenset({R.REVERSAL}), frozenset({R.REVERSAL}), "superseded by a newer notice: "),
)


@dataclass(frozen=True)
class Queued:
    """A message waiting to leave, as the re-check sees it."""

    template: TemplateName
    event_seq: int
    # Newer messages (not cancelled) about the same product to the same recipient, newest
    # first (then by template name, as the SQL orders them).
    newer: tuple[tuple[Recheck, TemplateName], ...] = ()

    @property
    def kind(self) -> Recheck:
        return KIND_OF[self.template]


def cancel_reason(message: Queued, facts: ProductFacts | None) -> str | None:
    """Why the message must not leave any more; None: its reason still holds."""
    for rule in RULES:
        reason = _applies(rule, message, facts)
        if reason is not None:
            return reason
    return None


def _applies(rule: Rule, m: Queued, facts: ProductFacts | None) -> str | None:
    if isinstance(rule, SinceRule):
        seq = getattr(facts, rule.fact) if facts is not None else None
        which = m.template in rule.templates if rule.templates else m.kind in rule.kinds
        return rule.reason if which and seq is not None and seq > m.event_seq else None
    if isinstance(rule, ExemptRule):
        exempt = facts is not None and facts.suspension_exempt
        return rule.reason if m.template in rule.templates and exempt else None
    if m.kind in rule.kinds:
        for kind, template in m.newer:
            if kind in rule.by:
                return rule.reason + template.value
    return None


def cancel_on_receipt(template: TemplateName,
                      event: CreditEvent | DeductionCollected) -> str | None:
    """A message that is stale the moment it is made: a threat to an exempt product. What a
    deduction collected is a fact, and its event no decision: nothing to fold."""
    if isinstance(event, DeductionCollected):
        return None
    # A notice quoting the product's own amount due, made for a product that owes nothing of
    # its own: "0.00元" never leaves (the revision's rule, domain/revision.py, at receipt).
    # The safety net: credit-control decides no reminder, warning or suspension for such a
    # product, but pre-cancels account-wide — a product paid in full, kept suspended for its
    # sibling's debt, was told "因欠费0.00元停用已超过保号期" (QA pass 37).
    if template in REVISED_TEMPLATES and event.context.amount_due_fen == 0:
        return NOTHING_OWED_REASON
    # Sequence 0 on both sides: no "since" rule can apply, only the product's own state.
    return cancel_reason(Queued(template, 0), fold(None, event, 0))
