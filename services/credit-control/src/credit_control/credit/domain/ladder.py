"""The arrears ladder (欠费预警 → 停机预警 → 停机) as a function of the current facts.

A product's place on the ladder is recomputed from the facts now (the oldest bill month still
owing, the tier, the rule table) and the notices already decided in this arrears cycle for that
month (`Ladder`). Two rules carry it:

- **The ladder belongs to the oldest owing month.** When that month moves on (the oldest month
  is paid) or the arrears are gone, the ladder restarts: the warning level and the suspension
  warning are forgotten, a product that was suspension-warned is merely warned again, and the
  new month's notices come as its own rows fall due.
- **Notice before suspension.** A suspension needs a suspension warning of the same cycle and
  month that named a deadline no earlier than the current tier's suspension day, and the
  deadline has come. A warning decided on its own day names the suspension day (the seed: the
  25th → the month's last day); one decided late (billed late, a sweep after the warning days,
  a downgrade past the new tier's day, an exemption that ended, a reversed payment) names
  today + the notice period, and the suspension waits for it ("late", not missed). The notice
  counts from the day the warning's SMS can first leave (`first_sending_day`, `sent_on`): one
  decided after the customer sending window closed (21:00 by default) is held by the
  notifier's quiet hours until the next morning, and names that day + the notice period if
  that is later than the tier's day; a catch-up sweep decides as of the missed day, but its
  warning leaves when it really runs, and counts from then. An upgrade
  moves the suspension day later than a warning already given: that warning no longer counts
  and the new tier's own suspension warning is owed.
- **The notice reached the customer** (`Notice`, `notice_allows`): the suspension warning's SMS
  was sent — and delivered, where the SMSC returns receipts (`NoticePolicy.requires_delivery`)
  — at least the notice period before the suspension's business day. A warning whose SMS
  failed or was withdrawn is owed again (a new decision, named for the lost ones so far);
  after `max_warnings` failed ones in a row, or one that can never be delivered (no valid
  contact number), the suspension goes ahead at the deadline as an exception with its reason.
- **A withdrawn warning is not a failed one** (`WITHDRAWN`): the notifier cancels a warning at
  send time only when its reason went (paid, exempt, a promise to pay deferred the
  suspension, the ladder restarted, superseded; an invalid number is `failed`, permanent).
  The customer was not told, so it is owed again, but it says nothing about whether a
  warning can reach them: it does not count toward `max_warnings` (nor does it break the
  streak of failures).
- **An unheard warning is lost too** (`heard_as_of`): one whose SMS is still not known to
  have reached the customer (no outcome at all, or sent without the receipt the policy waits
  for) `unheard_after_days` after the deadline it named counts, from that business day on,
  as lost (status `unheard`, one more failure): the wait for a receipt that never comes ends,
  and the warning is owed again or the suspension is an exception, as for `failed`.

Pure: no I/O; the balance-event batch, the sweep SQL's predicates and the invariant checker's
replay all follow these functions.
"""

import functools
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from common.clock import business_date, ensure_aware
from common.contracts.credit_control import CreditState
from common.contracts.snapshots import ProductFamily, Tier
from common.sending_hours import SendingWindow

from .rule_table import RuleTable

S = CreditState


@dataclass(frozen=True)
class Ladder:
    """The notices of this arrears cycle already decided for the oldest owing month `month`."""

    month: date | None = None
    warning_level: int = 0
    suspension_warned_on: date | None = None
    suspension_deadline: date | None = None  # the date the suspension warning named

    def for_month(self, oldest: date | None) -> "Ladder":
        """The same ladder if the oldest owing month is unchanged, else a fresh one."""
        return self if oldest == self.month else Ladder(month=oldest)

    def warned(self, level: int) -> "Ladder":
        return replace(self, warning_level=max(self.warning_level, level))

    def suspension_warned(self, on: date, deadline: date) -> "Ladder":
        return replace(self, suspension_warned_on=on, suspension_deadline=deadline)

    def without_suspension_warning(self) -> "Ladder":
        return replace(self, suspension_warned_on=None, suspension_deadline=None)


# Ladders are values (frozen): equal ones can be one object. The balance path builds one per
# product as loaded and one per product and event (the rules' view), and a frozen dataclass's
# __init__ is ~0.6 µs against the cache's ~0.2; a few hundred distinct ladders exist at a time
# (months × levels × warning dates), so the cache is small.
@functools.lru_cache(maxsize=4096)
def ladder_of(month: date | None, warning_level: int = 0, warned_on: date | None = None,
              deadline: date | None = None) -> Ladder:
    """`Ladder(month, warning_level, warned_on, deadline)`, shared."""
    return Ladder(month, warning_level, warned_on, deadline)


@dataclass(frozen=True)
class NoticePolicy:
    """What a suspension warning's SMS must have done before the suspension (settings)."""

    requires_delivery: bool = True  # the SMSC returns delivery receipts: wait for one
    max_warnings: int = 3  # lost warnings in a row before the suspension is an exception
    # Business days after the warning's deadline from which a warning still unheard of counts
    # as lost (`heard_as_of`); docs/rules.md says why 2.
    unheard_after_days: int = 2


DEFAULT_POLICY = NoticePolicy()
UNHEARD = "unheard"  # not an outcome the notifier sends: a warning heard of too late
# The notifier's re-check cancelled it before it left: its reason went (every `cancelled`
# the notifier publishes is such a withdrawal; a contact it cannot reach is `failed`).
WITHDRAWN = "cancelled"
FAILED = ("failed", UNHEARD)  # it did not reach the customer: counts toward max_warnings
LOST = (*FAILED, WITHDRAWN)  # not reached the customer either way: owed again


# How much of the notifier's reason a lost warning keeps (its contacts' provider errors, up
# to 4,000 characters): the suspension that may follow quotes it in its own reason, which
# must stay within the contracts' 4,000-character text bound or the suspension's event would
# be refused (dead-lettered) by its consumers and its 停机通知 never sent.
NOTICE_REASON_MAX = 500


@dataclass(frozen=True)
class Notice:
    """What became of the current suspension warning's SMS (the notifier's outcome events):
    business days, and the notice period in force when the warning was decided."""

    status: str | None = None  # None: nothing heard yet; sent | delivered | failed | cancelled
    #                            (| unheard: only as `heard_as_of` reads it)
    sent_on: date | None = None
    delivered_on: date | None = None
    notice_days: int = 1
    permanent: bool = False  # failed, and no attempt can succeed (no valid contact number)
    failures: int = 0  # failed (or unheard) warnings of this ladder, this one included
    reason: str = ""
    withdrawals: int = 0  # withdrawn (cancelled) warnings of this ladder, this one included

    @property
    def lost(self) -> bool:
        return self.status in LOST

    @property
    def losses(self) -> int:
        """Every warning of this ladder that did not reach the customer: what names the next
        one (`~n`), so each is a new decision."""
        return self.failures + self.withdrawals

    def reached_on(self, policy: NoticePolicy) -> date | None:
        """The business day the notice reached the customer, as far as the policy asks."""
        return self.delivered_on if policy.requires_delivery else (
            self.delivered_on or self.sent_on)

    def suspend_from(self, policy: NoticePolicy) -> date | None:
        """The first day the suspension may come, as far as the notice goes."""
        reached = self.reached_on(policy)
        return reached + timedelta(days=max(1, self.notice_days)) if reached else None

    def exception(self, policy: NoticePolicy) -> str | None:
        """Why the suspension goes ahead without a notice that reached the customer: only a
        failed delivery (a withdrawn warning is owed again, never an exception)."""
        if self.status not in FAILED:
            return None
        if self.permanent:
            return f"suspension warning undeliverable: {self.reason or self.status}"
        if self.failures >= policy.max_warnings:
            return (f"{self.failures} suspension warnings in a row {self.status}: "
                    f"{self.reason or self.status}")
        return None

    def heard(self, status: str, on: date, reason: str = "", permanent: bool = False) -> "Notice":
        """The notice after the notifier's outcome `status` (business day `on`) of this
        warning: `sent` and `delivered` only fill in what is not known yet; `delivered`,
        `failed` and `cancelled` are final (nothing changes after them); `failed` counts one
        more failed warning, `cancelled` one more withdrawn one. The consumer records the same
        on the product's row (adapters/notice_sql.py `_RECORD`)."""
        if self.status in (*LOST, "delivered") or (status == "sent" and self.status is not None):
            return self
        lost = status in ("failed", WITHDRAWN)
        reaching = status in ("sent", "delivered")
        return replace(
            self, status=status,
            sent_on=self.sent_on or (on if reaching else None),
            delivered_on=self.delivered_on or (on if status == "delivered" else None),
            reason=reason[:NOTICE_REASON_MAX] if lost else self.reason,
            permanent=permanent and status == "failed",
            failures=self.failures + int(status == "failed"),
            withdrawals=self.withdrawals + int(status == WITHDRAWN))


def next_notice(notice: Notice | None, deadline: date | None, policy: NoticePolicy,
                today: date, notice_days: int) -> Notice:
    """The notice of a suspension warning decided `today` (nothing heard of it yet; the notice
    period in force, `notice_days`), given the product's last one (`notice`, of the warning
    naming `deadline` on the ladder; None: none). The warnings of this ladder lost so far
    (`heard_as_of` today: failed, unheard, withdrawn) stay counted; a ladder without a
    suspension warning, or one whose warning was not lost, starts the counts afresh. The
    sweep's SQL writes the same (adapters/sweep_sql.py, the decided rows' update)."""
    heard = heard_as_of(notice, deadline, policy, today)
    if heard is None or deadline is None or not heard.lost:
        return Notice(notice_days=notice_days)
    return Notice(notice_days=notice_days, failures=heard.failures,
                  withdrawals=heard.withdrawals)


def reminder_level(level: int | None, ladder_level: int) -> int | None:
    """Which warning's text a warning of the ladder's step `level` is sent with when not its
    own (None). The ladder gives the step whose day has come: a product that reaches it
    without the warnings before it in this ladder (billed late, cleared and billed again, its
    oldest owing month moved on: `ladder_level` is what this ladder gave so far) was told
    fewer of them, and warning 2's text says "此为第二次欠费提醒". The text counts this
    ladder's warnings, this one included; the ladder keeps its step (the next row's day
    comes as scheduled). The sweep's SQL says the same (adapters/sweep_sql.py)."""
    if level is None or level <= ladder_level + 1:
        return None
    return ladder_level + 1


def unheard_limit(deadline: date, policy: NoticePolicy) -> date:
    """The business day from which a warning naming `deadline` and still unheard of is lost."""
    return deadline + timedelta(days=max(0, policy.unheard_after_days))


def heard_as_of(notice: Notice | None, deadline: date | None, policy: NoticePolicy,
                today: date) -> Notice | None:
    """The notice as the sweep of business day `today` reads it: a warning (naming
    `deadline`) whose SMS has not reached the customer, as far as the policy asks, and is not
    lost either, counts as lost from `unheard_limit` on — status `unheard`, one more failure,
    its reason saying so. A receipt that comes before that day (the sweep reads the stored
    notice) still counts; one that comes after it finds a new warning in its place."""
    if (notice is None or deadline is None or notice.lost
            or notice.reached_on(policy) is not None
            or today < unheard_limit(deadline, policy)):
        return notice
    return replace(notice, status=UNHEARD, failures=notice.failures + 1,
                   reason=unheard_reason(notice.status, deadline, policy))


def unheard_reason(status: str | None, deadline: date, policy: NoticePolicy) -> str:
    """The reason of an unheard warning (the sweep SQL writes the same words)."""
    what = "sent, no delivery receipt" if status == "sent" else "no outcome from the notifier"
    return (f"never heard of by {unheard_limit(deadline, policy)}, "
            f"{policy.unheard_after_days} days after its deadline {deadline}: {what}")


def notice_allows(notice: Notice | None, policy: NoticePolicy, today: date) -> bool:
    """The warning's SMS reached the customer a notice period ago, or it never can (an
    exception). None: not known to the caller (none decided; the what-if replay does not
    follow notices; the invariant checker's does)."""
    if notice is None:
        return True
    start = notice.suspend_from(policy)
    return (start is not None and start <= today) or notice.exception(policy) is not None


def warning_owed_again(notice: Notice | None, policy: NoticePolicy) -> bool:
    """The warning's SMS was lost and another attempt may reach the customer."""
    return notice is not None and notice.lost and notice.exception(policy) is None


def scheduled_suspension(table: RuleTable, family: ProductFamily, tier: Tier,
                         oldest: date) -> date:
    """The tier's suspension day for arrears whose oldest bill month is `oldest`."""
    return table.suspension(family, tier).scheduled(oldest)


def first_sending_day(decided: datetime, window: SendingWindow,
                      caught_up_at: datetime | None = None) -> date:
    """The business day (Asia/Shanghai) a customer SMS decided at the business moment `decided`
    can first leave: the notifier holds one decided outside the customer sending `window`
    (NOTIFIER_CUSTOMER_SENDING_HOURS; credit-control's CREDIT_CUSTOMER_SENDING_HOURS, the same
    default) until it next opens (docs/notifier.md "Quiet hours"). With 08:00-21:00: decided at
    20:59 it leaves that day; at 21:00 or 23:00, the next day at 08:00; at 07:00, the same day
    at 08:00. A catch-up sweep's decision leaves when it was really made (`caught_up_at`, when
    later: the notifier's `sending_as_of`). Never the wall clock."""
    at = ensure_aware(decided)
    if caught_up_at is not None:
        at = max(at, ensure_aware(caught_up_at))
    return business_date(window.first_moment(at))


def suspension_deadline(table: RuleTable, family: ProductFamily, tier: Tier, oldest: date,
                        today: date, sent_on: date | None = None) -> date:
    """The date a suspension warning decided `today` names: the suspension day, or the day its
    SMS can first leave (`sent_on`) + the notice period if that is later (a late warning).
    `sent_on` is `first_sending_day` of the decision's moment: the day it is decided, the next
    one when it is decided after the customer sending window closed (held overnight by the
    quiet hours), a catch-up sweep's real day (it decides as of a missed day, `today`, but runs
    and sends later); the notice counts from then, so the warning names a day on which the
    suspension can come (`Notice.suspend_from`: the day it reached the customer + the notice
    period). The notice period is the one of the month it is decided in (`today`)."""
    _, earliest = notice_from(table, family, tier, today, sent_on)
    return max(scheduled_suspension(table, family, tier, oldest), earliest)


def notice_from(table: RuleTable, family: ProductFamily, tier: Tier, today: date,
                sent_on: date | None = None) -> tuple[int, date]:
    """A suspension warning decided `today`: its notice period (at least a day) and the
    earliest day it may name, the day its SMS can first leave (`sent_on`, never before
    `today`) + that period. The sweep's plan hands both to its SQL (`SweepStep.notice_days`,
    `notice_date`), whose GREATEST with the suspension day is `suspension_deadline`."""
    notice = max(1, table.notice_days(family, tier, today))
    return notice, max(today, sent_on or today) + timedelta(days=notice)


def notice_counts(ladder: Ladder, table: RuleTable, family: ProductFamily, tier: Tier,
                  oldest: date | None) -> bool:
    """Whether the ladder's suspension warning announces the current tier's suspension."""
    return (oldest is not None and ladder.month == oldest
            and ladder.suspension_deadline is not None
            and ladder.suspension_deadline >= scheduled_suspension(table, family, tier, oldest))


def may_suspend(ladder: Ladder, table: RuleTable, family: ProductFamily, tier: Tier,
                oldest: date | None, today: date) -> bool:
    """The notice was given and its deadline has come."""
    return (notice_counts(ladder, table, family, tier, oldest)
            and ladder.suspension_deadline is not None and ladder.suspension_deadline <= today)


def is_late(ladder: Ladder, table: RuleTable, family: ProductFamily, tier: Tier,
            oldest: date) -> bool:
    """A suspension after the tier's day because its warning came late (not missed)."""
    return (ladder.suspension_deadline is not None
            and ladder.suspension_deadline > scheduled_suspension(table, family, tier, oldest))


# Once per balance event: slotted, not frozen (why: rules.AccountFacts).
@dataclass(slots=True)
class Reconciled:
    state: CreditState
    ladder: Ladder
    reason: str | None = None  # set when the state moved back (a restart)


def reconcile(state: CreditState, ladder: Ladder, table: RuleTable, family: ProductFamily,
              tier: Tier, oldest: date | None, owes: bool) -> Reconciled:
    """Where the product stands after the facts changed (a balance event, a tier change).

    The ladder follows the oldest owing month; a suspension warning that no longer announces
    the current tier's suspension (an upgrade) is dropped. A suspension-warned product whose
    warning is gone goes back to warned while it still owes (a payment clears it otherwise)."""
    now = ladder.for_month(oldest)
    if now.suspension_deadline is not None and not notice_counts(now, table, family, tier,
                                                                 oldest):
        now = now.without_suspension_warning()
    if state is S.SUSPENSION_WARNED and owes and now.suspension_deadline is None:
        why = (f"ladder restarts: oldest owing month {_month(ladder.month)} → {_month(oldest)}"
               if now.month != ladder.month else
               f"suspension warning for {ladder.suspension_deadline} no longer announces the "
               f"{tier} tier's suspension on "
               f"{scheduled_suspension(table, family, tier, oldest) if oldest else None}")
        return Reconciled(S.WARNED, now, why)
    return Reconciled(state, now)


def _month(d: date | None) -> str:
    return f"{d:%Y-%m}" if d else "none"
