"""Evaluating the rule table: pure functions of the facts, the product and the business date.

- `on_balance`: a balance event (restore / clear on payment, bill notice, threshold suspension);
- `on_calendar`: what the sweeps of `today` decide for one product (the reference semantics);
- `sweep_plan`: the same rules as set-based steps, one per rule row, for the SQL sweep.

Calendar rows are due-on-or-after: a suspension whose day has passed still fires when a sweep
runs late (zero missed suspensions); warnings and deductions fire from their day until the end
of that month. The suspension warning is due from its day until the suspension is made, and a
suspension only once a suspension warning of the same cycle and oldest owing month named a
deadline that has come (`domain/ladder.py`: notice before suspension).
Every intent has a `period`, so one product gets one decision per rule and arrears cycle:
re-running a sweep or redelivering an event decides nothing new.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta

from common.clock import last_day_of_month
from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier

from . import ladder as ladders
from .ladder import DEFAULT_POLICY, Ladder, Notice, NoticePolicy, ladder_of
from .model import Action, action_for, can, from_states, next_state
from .profiles import LONG_RETENTION_DAYS, LONG_RETENTION_STARS, RETENTION_DAYS, retention_days
from .rule_table import RuleRow, RuleTable, Trigger, add_months

S = CreditState
D = DecisionType
BILL_NOTICE_PAY_BY_DAY = 25
SEVERITY = {D.SUSPEND: 0, D.SUSPENSION_WARNING: 1, D.DEDUCTION: 2, D.WARNING: 3}
REVERSAL_RULE = "payment-reversed"  # not a table row: a reversal always gives notice


# The facts are made once per balance event and product: plain slotted classes, not frozen
# (a frozen dataclass sets each field through object.__setattr__, ~1.5 µs an event); the
# rules only read them.
@dataclass(slots=True)
class AccountFacts:
    balance_fen: int
    amount_due_fen: int
    cause: BalanceCause | None = None
    closed_bill_month: str | None = None
    oldest_due_month: date | None = None  # first day of the oldest bill month still owing
    credit_limit_fen: int = 0  # seed 004: the account may owe this much without suspension
    deposit_fen: int = 0  # held by billing; a deduction (划扣) can only take from it

    @property
    def deduction_fen(self) -> int:
        """What a deduction asks billing to collect: the amount due, as far as the deposit
        covers it (the sweep's SQL computes the same LEAST)."""
        return max(0, min(self.amount_due_fen, self.deposit_fen))

    @property
    def owes(self) -> bool:
        return self.amount_due_fen > self.credit_limit_fen


@dataclass(slots=True)
class ProductFacts:
    family: ProductFamily
    tier: Tier
    state: CreditState
    warning_level: int = 0
    star_level: int | None = None
    exempt: bool = False  # red list or emergency no-suspension, active now
    suspended_on: date | None = None
    # The ladder of this cycle (domain/ladder.py); None month: the facts' oldest owing month.
    ladder_month: date | None = None
    suspension_warned_on: date | None = None
    suspension_deadline: date | None = None
    # What became of the suspension warning's SMS (ladder.Notice); None: not known to the
    # caller (none decided; the what-if replay does not follow notices), the notice counts as
    # given when the warning was decided.
    notice: Notice | None = None
    # A scoped emergency freeze stops its suspension now (freezes.py). Last: callers build
    # these facts by position.
    frozen: bool = False
    # An open promise to pay defers its account's suspension (collections/domain/promises.py).
    promised: bool = False
    # The product's own amount due (domain/product_amount.py); None: not known to the caller
    # (the account's facts alone decide, as before per-product amounts).
    own_due_fen: int | None = None
    # Suspended by association for a collections case (关联停机, collections/): held for
    # another account's arrears, never pre-cancelled by its retention.
    held: bool = False

    def ladder(self, oldest: date | None) -> Ladder:
        month = self.ladder_month or oldest
        return ladder_of(month, self.warning_level, self.suspension_warned_on,
                         self.suspension_deadline).for_month(oldest)


@dataclass(frozen=True)
class Intent:
    decision: DecisionType
    rule_id: str
    reason: str
    period: str  # one decision of a kind per product and period: re-runs are harmless
    deadline: date | None = None
    warning_level: int | None = None
    amount_fen: int | None = None


def decision_id(product_id: str, intent_period: str, decision: DecisionType, cycle: int) -> str:
    """Deterministic, and computable in SQL too: md5(key)::uuid. The digest's hex is cut
    into the uuid's groups directly: `str(uuid.UUID(hex))` is the same text through a
    Python-level constructor (~1.5 µs, on every proposal of the balance path)."""
    key = f"{product_id}|{decision.value}|{intent_period}|{cycle}"
    h = hashlib.md5(key.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def applies(intent: Intent, product: ProductFacts) -> bool:
    return can(product.state, action_for(intent.decision, product.family))


# --- balance events ------------------------------------------------------------------------

_BALANCE_TRIGGERS = (Trigger.PAYMENT, Trigger.BILL_RUN, Trigger.THRESHOLD)


def balance_rows(table: RuleTable, family: ProductFamily, tier: Tier) -> dict[Trigger, RuleRow]:
    """The enabled rows of a family × tier a balance event can fire, by trigger."""
    return {r.trigger: r for r in table.enabled(family, tier) if r.trigger in _BALANCE_TRIGGERS}


def on_balance(
    table: RuleTable, facts: AccountFacts, product: ProductFacts, today: date, event_key: str,
    rows: Mapping[Trigger, RuleRow] | None = None, sent_on: date | None = None,
) -> Intent | None:
    """`rows`: `balance_rows(table, product.family, product.tier)`, when the caller keeps it
    (the balance path asks once per family × tier and batch, not once per event). `sent_on`:
    the day the decision's SMS can first leave (`ladder.first_sending_day` of the event's
    moment; None: `today`), from which a reversal's deadline counts the notice period as a
    suspension warning decided at that moment would."""
    if rows is None:
        rows = balance_rows(table, product.family, product.tier)
    restore = rows.get(Trigger.PAYMENT)
    if not facts.owes and product.state in RESTORABLE and restore:
        return Intent(D.RESTORE, restore.rule_id, restore_reason(facts, product.state),
                      period=event_key)
    if not facts.owes and product.state in (S.WARNED, S.SUSPENSION_WARNED):
        return Intent(D.ARREARS_CLEARED, "clear-on-payment",
                      f"amount due cleared by {cause_text(facts.cause)} before any suspension",
                      period=event_key)
    if product.own_due_fen == 0 and product.state in (S.WARNED, S.SUSPENSION_WARNED):
        # Its own debt paid while the account still owes for others: it leaves the ladder
        # (a reminder still waiting for it is cancelled at send time: the product is back to
        # normal), and is never reminded or suspended for its siblings' debt.
        return Intent(D.ARREARS_CLEARED, "clear-on-payment",
                      f"the product's own amount due cleared by {cause_text(facts.cause)} "
                      f"before any suspension (the account still owes {facts.amount_due_fen} "
                      "fen for other products)", period=event_key)
    threshold = rows.get(Trigger.THRESHOLD)
    if (threshold and product.star_level is not None and not product.exempt
            and not product.frozen and not product.promised
            and facts.balance_fen < -facts.credit_limit_fen
            and product.state in (S.NORMAL, S.WARNED, S.SUSPENSION_WARNED)):
        return Intent(D.SUSPEND, threshold.rule_id,
                      f"balance {facts.balance_fen} fen below −limit {facts.credit_limit_fen} fen",
                      period=event_key)
    oldest = facts.oldest_due_month
    if (facts.cause is BalanceCause.REVERSAL and facts.owes and oldest is not None
            and product.state in (S.NORMAL, S.RESTORE_REQUESTED)):
        # Back on the ladder with notice: never straight into suspension (the suspension
        # warning and its notice period follow at the next sweep if its day has passed).
        # Restore requested: the bounced payment asked for a restore still in flight; it
        # goes on, and the customer is told why it owes again (QA pass 30: it was restored
        # with a 开机通知 and never told the payment bounced).
        return Intent(D.PAYMENT_REVERSED, REVERSAL_RULE,
                      f"a reversed payment re-opened arrears of {facts.amount_due_fen} fen "
                      f"since bill month {oldest:%Y-%m}", period=event_key,
                      deadline=ladders.suspension_deadline(table, product.family, product.tier,
                                                           oldest, today, sent_on))
    notice = rows.get(Trigger.BILL_RUN)
    if (notice and facts.cause is BalanceCause.BILL_RUN and facts.balance_fen < 0
            and facts.amount_due_fen > 0 and product.state in (S.NORMAL, S.WARNED)):
        return Intent(D.BILL_NOTICE, notice.rule_id,
                      f"balance {facts.balance_fen} fen < 0 after the bill run of "
                      f"{facts.closed_bill_month}",
                      period=f"bill:{facts.closed_bill_month}",
                      deadline=bill_notice_deadline(today))
    return None


# The states a balance event that clears the debt restores: a suspension (done or in flight)
# and a pre-cancellation, whose line is kept until the retention ends in a cancellation by hand.
RESTORABLE = (S.SUSPENDED, S.SUSPEND_REQUESTED, S.PRE_CANCEL)


def cause_text(cause: BalanceCause | None) -> str:
    """What changed the balance, in words: a write-off's restore must not say "payment"."""
    return cause.value.replace("_", "-") if cause is not None else "a balance change"


def restore_reason(facts: AccountFacts, state: CreditState) -> str:
    lifted = "; pre-cancellation lifted" if state is S.PRE_CANCEL else ""
    return (f"amount due {facts.amount_due_fen} fen ≤ limit {facts.credit_limit_fen} fen after "
            f"{cause_text(facts.cause)}{lifted}")


def bill_notice_deadline(today: date) -> date:
    """请于MM月DD日前: before the 25th (the suspension warning), else the month's last day."""
    if today.day < BILL_NOTICE_PAY_BY_DAY:
        return today.replace(day=BILL_NOTICE_PAY_BY_DAY)
    return last_day_of_month(today)


# --- calendar ------------------------------------------------------------------------------

def fires(row: RuleRow, oldest: date, today: date) -> bool:
    """Whether calendar row `row` is due today for arrears whose oldest bill month is `oldest`."""
    assert row.arrears_month is not None
    due = row.scheduled(oldest)
    if row.decision is D.SUSPEND:
        return due <= today
    return due <= today and add_months(oldest, row.arrears_month) == today.replace(day=1)


def on_calendar(
    table: RuleTable, facts: AccountFacts, product: ProductFacts, today: date,
    policy: NoticePolicy = DEFAULT_POLICY, sent_on: date | None = None,
) -> list[Intent]:
    """Every calendar intent due today that the product's state allows, most severe first.
    `sent_on`: the day the sweep's SMS can first leave (`ladder.first_sending_day` of its
    moment: the next day for a sweep after the customer sending window closed, a catch-up's
    real day; None: `today`), from which a suspension warning's notice counts."""
    intents = []
    if facts.owes and facts.oldest_due_month is not None:
        oldest = facts.oldest_due_month
        ladder = product.ladder(oldest)
        for row in table.enabled(product.family, product.tier, Trigger.CALENDAR):
            intent = _calendar_due(table, row, facts, product, ladder, today, policy, sent_on)
            if intent is not None:
                intents.append(intent)
    intents.sort(key=lambda i: SEVERITY[i.decision])
    intents += _retention(table, product, today)
    return [i for i in intents if applies(i, product)]


def _calendar_due(table: RuleTable, row: RuleRow, facts: AccountFacts, product: ProductFacts,
                  ladder: Ladder, today: date, policy: NoticePolicy,
                  sent_on: date | None = None) -> Intent | None:
    oldest = facts.oldest_due_month
    assert oldest is not None
    f, t = product.family, product.tier
    # A warning unheard of too long after its deadline is read as lost (ladder.heard_as_of).
    notice = ladders.heard_as_of(product.notice, product.suspension_deadline, policy, today)
    if row.decision is D.SUSPEND:
        if (product.exempt or product.state is not S.SUSPENSION_WARNED
                or not fires(row, oldest, today)
                or not ladders.may_suspend(ladder, table, f, t, oldest, today)
                or not ladders.notice_allows(notice, policy, today)):
            return None
        intent = _calendar_intent(table, row, facts, product, oldest)
        note = late_note(ladder) if ladders.is_late(ladder, table, f, t, oldest) else ""
        due = max(row.scheduled(oldest), ladder.suspension_deadline or row.scheduled(oldest))
        note += notice_note(notice, policy, due)
        return intent if not note else Intent(
            intent.decision, intent.rule_id, intent.reason + note, intent.period)
    if row.decision is D.SUSPENSION_WARNING:
        # Due from its day until the suspension is made, unless a warning already counts
        # and its SMS was not lost (a lost one is owed again).
        again = ladders.warning_owed_again(notice, policy)
        if (product.exempt or row.scheduled(oldest) > today
                or (ladders.notice_counts(ladder, table, f, t, oldest) and not again)):
            return None
        deadline = ladders.suspension_deadline(table, f, t, oldest, today, sent_on)
        # The deadline is part of the id: a warning that stopped counting (upgrade, then a
        # downgrade back) is replaced by a new one, not swallowed as a re-run; a re-run finds
        # the ladder's warning counting and decides nothing. A warning owed again because
        # its SMS was lost (failed or withdrawn) is named for the losses so far (a new
        # decision the same day).
        again_part = f"~{notice.losses}" if again and notice else ""
        return Intent(row.decision, row.rule_id, calendar_reason(row, facts.amount_due_fen, oldest),
                      period=f"{row.rule_id}:{oldest:%Y-%m}:{deadline}{again_part}",
                      deadline=deadline)
    if not fires(row, oldest, today):
        return None
    if row.decision is D.DEDUCTION and deduction_fen(facts, product) == 0:
        return None  # nothing to take: no deduction, and no SMS announcing one
    if row.warning_level is not None and ladder.warning_level >= row.warning_level:
        return None
    return _calendar_intent(table, row, facts, product, oldest)


def late_note(ladder: Ladder) -> str:
    """Appended to a late suspension's reason (the sweep SQL writes the same words)."""
    return (f"; late: suspension warning of {ladder.suspension_warned_on} named "
            f"{ladder.suspension_deadline}")


def notice_note(notice: Notice | None, policy: NoticePolicy, due: date) -> str:
    """Appended to a suspension's reason when its warning's SMS made it later than it was due
    (the tier's day, or the later deadline the warning named) or it goes ahead as an
    exception (the sweep SQL writes the same words)."""
    if notice is None:
        return ""
    exception = notice.exception(policy)
    if exception is not None:
        return f"; exception: {exception}"
    start = notice.suspend_from(policy)
    if start is not None and start > due:
        return f"; late: suspension warning reached the customer on {notice.reached_on(policy)}"
    return ""


def record(ladder: Ladder, intent: Intent, today: date) -> Ladder:
    """The ladder after a notice of it was decided today."""
    if intent.decision is D.SUSPENSION_WARNING and intent.deadline is not None:
        return ladder.suspension_warned(today, intent.deadline)
    if intent.warning_level is not None:
        return ladder.warned(intent.warning_level)
    return ladder


def _calendar_intent(
    table: RuleTable, row: RuleRow, facts: AccountFacts, product: ProductFacts, oldest: date
) -> Intent:
    suspend_on = table.suspension(product.family, product.tier).scheduled(oldest)
    deadline = suspend_on if row.decision in (D.WARNING, D.SUSPENSION_WARNING) else None
    return Intent(
        row.decision, row.rule_id, calendar_reason(row, facts.amount_due_fen, oldest),
        period=f"{row.rule_id}:{oldest:%Y-%m}", deadline=deadline,
        warning_level=row.warning_level,
        amount_fen=deduction_fen(facts, product) if row.decision is D.DEDUCTION else None)


def deduction_fen(facts: AccountFacts, product: ProductFacts) -> int:
    """What one product's deduction asks billing to collect: its own amount due as far as the
    deposit covers it (the account's amount when its own is not known)."""
    if product.own_due_fen is None:
        return facts.deduction_fen
    return max(0, min(product.own_due_fen, facts.deposit_fen))


def deduction_shares(deposit_fen: int, own_dues: dict[str, int]) -> dict[str, int]:
    """The deductions of one account's products decided the same day (product id → what it
    asks): the one deposit shared in product id order, each product asking at most its own
    amount due, none asking nothing (the sweep's SQL, `sweep_sql._deduction_shares`)."""
    shares: dict[str, int] = {}
    left = max(0, deposit_fen)
    for product_id in sorted(own_dues):
        ask = min(max(0, own_dues[product_id]), left)
        if ask > 0:
            shares[product_id] = ask
            left -= ask
    return shares


def calendar_reason(row: RuleRow, amount_due_fen: int, oldest: date) -> str:
    return (f"amount due {amount_due_fen} fen since bill month {oldest:%Y-%m}; "
            f"{row.decision.value} on day {row.day} of arrears month {row.arrears_month}")


def _retention(table: RuleTable, product: ProductFacts, today: date) -> list[Intent]:
    row = next(iter(table.enabled(product.family, product.tier, Trigger.RETENTION)), None)
    if row is None or product.state is not S.SUSPENDED or product.suspended_on is None:
        return []
    if product.exempt or product.held:  # the red list / emergency cover every sanction
        return []
    days = retention_days(product.star_level)
    if product.suspended_on + timedelta(days=days) > today:
        return []
    return [Intent(D.PRE_CANCEL, row.rule_id,
                   f"suspended since {product.suspended_on}, retention {days} days ran out",
                   period=f"retention:{product.suspended_on}")]


# --- the same rules as set-based sweep steps -----------------------------------------------

@dataclass(frozen=True)
class SweepStep:
    """One rule row as a set-based statement: products of (family, tier) in `from_states`
    whose oldest owing month is `month` (or any month up to `cutoff` for suspensions)."""

    row: RuleRow
    from_states: tuple[CreditState, ...]
    to_state: CreditState
    month: date | None = None
    cutoff: date | None = None
    deadline: date | None = None
    skip_exempt: bool = False
    retention_short_before: date | None = None  # suspended on or before: retention ran out
    retention_long_before: date | None = None
    # Suspension and suspension-warning steps: the tier's suspension row (its day per product)
    # and today; a suspension warning names GREATEST(that day, notice_date), notice_date being
    # the day its SMS can first leave (`sent_on`: today, the next day after the sending window
    # closed, a catch-up sweep's real day) + the notice period (`notice_days`, what the
    # product records).
    suspend_row: RuleRow | None = None
    today: date | None = None
    notice_date: date | None = None
    notice_days: int | None = None
    # Suspension and suspension-warning steps: what the warning's SMS must have done.
    notice_policy: NoticePolicy = DEFAULT_POLICY


def sweep_plan(table: RuleTable, today: date, policy: NoticePolicy = DEFAULT_POLICY,
               sent_on: date | None = None) -> list[SweepStep]:
    """Today's steps, most severe first; suspensions first so a late sweep never warns a
    product it is about to suspend. `sent_on`: the day the sweep's SMS can first leave
    (`ladder.first_sending_day` of its moment: the next day for a sweep after the customer
    sending window closed, a catch-up's real day; None: `today`), from which its suspension
    warnings' notice counts (ladder.suspension_deadline; the SQL's `notice_date`)."""
    steps = [replace(s, notice_policy=policy) for row in table.calendar_rows()
             if (s := _calendar_step(table, row, today, sent_on))]
    steps.sort(key=lambda s: (SEVERITY[s.row.decision], -(s.row.warning_level or 0)))
    steps += [_retention_step(row, today) for row in table.rows
              if row.enabled and row.trigger is Trigger.RETENTION]
    return steps


def _calendar_step(table: RuleTable, row: RuleRow, today: date,
                   sent_on: date | None = None) -> SweepStep | None:
    assert row.arrears_month is not None
    action = action_for(row.decision, row.family)
    month_start = today.replace(day=1)
    suspend_row = table.suspension(row.family, row.tier)
    if row.decision in (D.SUSPEND, D.SUSPENSION_WARNING):
        # Due on or after its day: every oldest month up to the cutoff.
        back = row.arrears_month + (0 if row.day_in(month_start) <= today else 1)
        cutoff = add_months(month_start, -back)
        if row.decision is D.SUSPEND:  # only after the notice (ladder.may_suspend)
            return SweepStep(row, (S.SUSPENSION_WARNED,), next_state(S.NORMAL, action),
                             cutoff=cutoff, skip_exempt=True, suspend_row=suspend_row,
                             today=today)
        notice, notice_date = ladders.notice_from(table, row.family, row.tier, today, sent_on)
        return SweepStep(row, _sweepable(action), S.SUSPENSION_WARNED, cutoff=cutoff,
                         skip_exempt=True, suspend_row=suspend_row, today=today,
                         notice_date=notice_date, notice_days=notice)
    if row.day_in(month_start) > today:
        return None
    oldest = add_months(month_start, -row.arrears_month)
    suspend_on = suspend_row.scheduled(oldest)
    after = S.WARNED if action is Action.WARN else next_state(S.NORMAL, action)
    return SweepStep(row, _sweepable(action), after, month=oldest,
                     deadline=suspend_on if row.decision is not D.DEDUCTION else None)


def _sweepable(action: Action) -> tuple[CreditState, ...]:
    # A sweep never acts on a product with a command or work order in flight.
    return tuple(s for s in from_states(action)
                 if s not in (S.SUSPEND_REQUESTED, S.RESTORE_REQUESTED))


def _retention_step(row: RuleRow, today: date) -> SweepStep:
    return SweepStep(row, (S.SUSPENDED,), S.PRE_CANCEL, skip_exempt=True,
                     retention_short_before=today - timedelta(days=RETENTION_DAYS),
                     retention_long_before=today - timedelta(days=LONG_RETENTION_DAYS))


__all__ = ["LONG_RETENTION_STARS", "AccountFacts", "Intent", "ProductFacts", "SweepStep",
           "deduction_fen", "deduction_shares", "on_balance", "on_calendar", "sweep_plan"]
