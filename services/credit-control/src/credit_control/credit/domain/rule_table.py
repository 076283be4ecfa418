"""The credit-control rule table as data (seed 000: 12 ADC rules, 9 MAS / SMS-direct rules).

One row = family × tier × trigger → decision, with its day offsets. Calendar rows are placed
relative to the *oldest bill month still owing* (M): arrears month n is the n-th month after M
(the bill of October is issued in November = arrears month 1). `day` is a day of that month or
"last" (the month's last day, 28/29/30/31).

Validated on load the way killbill validates overdue.xml: every family × tier has exactly one
enabled suspension row and one restore row (zero missed suspensions), notices come before the
suspension they announce, no two enabled rows do the same thing.
"""

from collections import Counter
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.clock import last_day_of_month
from common.contracts.credit_control import DecisionType
from common.contracts.snapshots import ProductFamily, Tier

D = DecisionType
F = ProductFamily


class Trigger(StrEnum):
    BILL_RUN = "bill_run"  # a balance event caused by the monthly bill run
    PAYMENT = "payment"  # any balance event that leaves nothing (above the limit) due
    CALENDAR = "calendar"  # a day of an arrears month, evaluated by the sweeps
    RETENTION = "retention"  # the number-keeping period after suspension ran out (sweeps)
    THRESHOLD = "threshold"  # a balance event taking the balance below −credit limit


Day = int | Literal["last"]

_DECISIONS_BY_TRIGGER: dict[Trigger, frozenset[DecisionType]] = {
    Trigger.BILL_RUN: frozenset({D.BILL_NOTICE}),
    Trigger.PAYMENT: frozenset({D.RESTORE}),
    Trigger.CALENDAR: frozenset({D.WARNING, D.SUSPENSION_WARNING, D.SUSPEND, D.DEDUCTION}),
    Trigger.RETENTION: frozenset({D.PRE_CANCEL}),
    Trigger.THRESHOLD: frozenset({D.SUSPEND}),
}


class RuleRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
    family: ProductFamily
    tier: Tier
    trigger: Trigger
    decision: DecisionType
    warning_level: Annotated[int, Field(ge=1, le=3)] | None = None
    arrears_month: Annotated[int, Field(ge=1, le=12)] | None = None
    day: Day | None = None
    enabled: bool = True
    # Suspension rows only: the notice period in days a suspension warning decided late (after
    # its own day) gives before this suspension. None = the seed's span, from the suspension
    # warning's day to this row's day in the month the warning is decided (25th → last day).
    notice_days: Annotated[int, Field(ge=1, le=31)] | None = None
    # Which seed rule this row encodes (documentation, shown by the API); no NUL (stored).
    seed_rule: Annotated[str, Field(pattern=r"^[^\x00]*$")] = ""

    @model_validator(mode="after")
    def _consistent(self) -> "RuleRow":
        if self.decision not in _DECISIONS_BY_TRIGGER[self.trigger]:
            raise ValueError(f"{self.rule_id}: trigger {self.trigger} cannot {self.decision}")
        calendar = self.trigger is Trigger.CALENDAR
        if calendar != (self.arrears_month is not None and self.day is not None):
            raise ValueError(f"{self.rule_id}: arrears_month and day are set exactly for "
                             "calendar rows")
        if isinstance(self.day, int) and not 1 <= self.day <= 28:
            raise ValueError(f"{self.rule_id}: day must be 1..28 or 'last' (every month has it)")
        if (self.decision is D.WARNING) != (self.warning_level is not None):
            raise ValueError(f"{self.rule_id}: warning_level is set exactly for warnings")
        if self.notice_days is not None and not (calendar and self.decision is D.SUSPEND):
            raise ValueError(f"{self.rule_id}: notice_days is set only on calendar suspension "
                             "rows")
        return self

    def day_in(self, month_start: date) -> date:
        """This row's day within the month starting at `month_start`."""
        if self.day == "last" or self.day is None:
            return last_day_of_month(month_start)
        return month_start.replace(day=self.day)

    def scheduled(self, oldest_bill_month: date) -> date:
        """When this calendar row fires for arrears of `oldest_bill_month`."""
        assert self.arrears_month is not None
        return self.day_in(add_months(oldest_bill_month, self.arrears_month))


def add_months(month_start: date, n: int) -> date:
    index = month_start.year * 12 + month_start.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


class RuleTable(BaseModel):
    """An immutable, validated set of rows with its version (1 = the seed defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = 1
    rows: tuple[RuleRow, ...]

    @model_validator(mode="after")
    def _complete(self) -> "RuleTable":
        problems = _problems(self.rows)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def enabled(self, family: ProductFamily, tier: Tier,
                trigger: Trigger | None = None) -> list[RuleRow]:
        return [r for r in self.rows if r.enabled and r.family is family and r.tier is tier
                and (trigger is None or r.trigger is trigger)]

    def suspension(self, family: ProductFamily, tier: Tier) -> RuleRow:
        return next(r for r in self.enabled(family, tier, Trigger.CALENDAR)
                    if r.decision is D.SUSPEND)

    def suspension_warning(self, family: ProductFamily, tier: Tier) -> RuleRow:
        return next(r for r in self.enabled(family, tier, Trigger.CALENDAR)
                    if r.decision is D.SUSPENSION_WARNING)

    def notice_days(self, family: ProductFamily, tier: Tier, warned_on: date) -> int:
        """The notice period of a suspension warning decided on `warned_on`: the suspension
        row's `notice_days`, else the table's own span from the suspension warning's day to
        the suspension day, for the arrears whose warning falls in `warned_on`'s month (the
        seed: the 25th → the month's last day, 3–6 days)."""
        suspend = self.suspension(family, tier)
        if suspend.notice_days is not None:
            return suspend.notice_days
        warn = self.suspension_warning(family, tier)
        assert warn.arrears_month is not None
        oldest = add_months(warned_on.replace(day=1), -warn.arrears_month)
        return (suspend.scheduled(oldest) - warn.scheduled(oldest)).days

    def calendar_rows(self) -> list[RuleRow]:
        return [r for r in self.rows if r.enabled and r.trigger is Trigger.CALENDAR]


def _problems(rows: tuple[RuleRow, ...]) -> list[str]:
    problems = [f"rule_id {rid!r} used {n} times"
                for rid, n in Counter(r.rule_id for r in rows).items() if n > 1]
    enabled = [r for r in rows if r.enabled]
    same = Counter((r.family, r.tier, r.trigger, r.decision, r.warning_level, r.arrears_month)
                   for r in enabled)
    problems += [f"{f}/{t}: {n} enabled {tr} {d} rows (level {lv}, month {m})"
                 for (f, t, tr, d, lv, m), n in same.items() if n > 1]
    for family in ProductFamily:
        for tier in Tier:
            mine = [r for r in enabled if r.family is family and r.tier is tier]
            problems += _family_tier_problems(family, tier, mine)
    return problems


def _family_tier_problems(family: ProductFamily, tier: Tier, rows: list[RuleRow]) -> list[str]:
    where = f"{family}/{tier}"
    suspends = [r for r in rows if r.trigger is Trigger.CALENDAR and r.decision is D.SUSPEND]
    if len(suspends) != 1:
        return [f"{where}: needs exactly one enabled calendar suspension row (zero missed "
                "suspensions)"]
    if not any(r.trigger is Trigger.PAYMENT for r in rows):
        return [f"{where}: needs an enabled restore-on-payment row"]
    warns = [r for r in rows if r.trigger is Trigger.CALENDAR
             and r.decision is D.SUSPENSION_WARNING]
    if len(warns) != 1:
        # No suspension without a suspension warning of the same arrears cycle.
        return [f"{where}: needs exactly one enabled calendar suspension warning row (notice "
                "before suspension)"]
    # Any bill month will do to compare positions inside the arrears timeline.
    probe = date(2000, 1, 1)
    suspend_at = suspends[0].scheduled(probe)
    return [f"{where}: {r.rule_id} ({r.decision}) falls after the suspension"
            for r in rows if r.trigger is Trigger.CALENDAR and r.decision is not D.SUSPEND
            and r.decision is not D.DEDUCTION and r.scheduled(probe) >= suspend_at]


# --- the defaults -------------------------------------------------------------------------

# Higher tiers get more time: the arrears month whose last day suspends (seed 000 is silent on
# the exact offsets; these follow the deduction days it does give: mid is deducted on the 15th
# of month 2, high on the 15th of month 3, each before its own suspension).
FINAL_MONTH = {Tier.LOW: 1, Tier.MID: 2, Tier.HIGH: 3}
WARNING_DAY = 10
DEDUCTION_DAY = 15
SUSPENSION_WARNING_DAY = 25
TIER_CN = {Tier.LOW: "低", Tier.MID: "中", Tier.HIGH: "高"}


def _slug(family: ProductFamily) -> str:
    return family.value.lower().replace("_", "-")


def _common_rows(family: ProductFamily, tier: Tier, seed: str) -> list[RuleRow]:
    f, final, cn = _slug(family), FINAL_MONTH[tier], TIER_CN[tier]
    return [
        RuleRow(rule_id=f"{f}-bill-notice-{tier}", family=family, tier=tier,
                trigger=Trigger.BILL_RUN, decision=D.BILL_NOTICE,
                seed_rule=f"{seed} 月结话费通知 / 话费通知短信 (balance < 0 after the bill run)"),
        RuleRow(rule_id=f"{f}-warning-1-{tier}", family=family, tier=tier,
                trigger=Trigger.CALENDAR, decision=D.WARNING, warning_level=1,
                arrears_month=1, day=WARNING_DAY, seed_rule=f"{seed} 欠费预警"),
        RuleRow(rule_id=f"{f}-suspension-warning-{tier}", family=family, tier=tier,
                trigger=Trigger.CALENDAR, decision=D.SUSPENSION_WARNING, arrears_month=final,
                day=SUSPENSION_WARNING_DAY, seed_rule=f"{seed}【{cn}信用度】欠费停用前预警 (25日)"),
        RuleRow(rule_id=f"{f}-suspend-{tier}", family=family, tier=tier,
                trigger=Trigger.CALENDAR, decision=D.SUSPEND, arrears_month=final, day="last",
                seed_rule=f"{seed}【{cn}信用度】欠费预警后停用 (月末最后一天)"),
        RuleRow(rule_id=f"{f}-restore-{tier}", family=family, tier=tier,
                trigger=Trigger.PAYMENT, decision=D.RESTORE, seed_rule=f"{seed} 开机规则"),
        RuleRow(rule_id=f"{f}-pre-cancel-{tier}", family=family, tier=tier,
                trigger=Trigger.RETENTION, decision=D.PRE_CANCEL,
                seed_rule="seed 004 保号期 120/90 天 → 预拆机"),
        RuleRow(rule_id=f"{f}-threshold-suspend-{tier}", family=family, tier=tier,
                trigger=Trigger.THRESHOLD, decision=D.SUSPEND, enabled=False,
                seed_rule="seed 004 授信额度: balance below −limit (opt-in)"),
    ]


def _adc_extra(tier: Tier) -> list[RuleRow]:
    rows = []
    if tier in (Tier.MID, Tier.HIGH):
        rows += [
            RuleRow(rule_id=f"adc-warning-2-{tier}", family=F.ADC, tier=tier,
                    trigger=Trigger.CALENDAR, decision=D.WARNING, warning_level=2,
                    arrears_month=2, day=WARNING_DAY,
                    seed_rule="ADC #9【高、中信用度】欠费二次预警"),
            RuleRow(rule_id=f"adc-deduction-2-{tier}", family=F.ADC, tier=tier,
                    trigger=Trigger.CALENDAR, decision=D.DEDUCTION, arrears_month=2,
                    day=DEDUCTION_DAY, seed_rule="ADC #11【高、中信用度】欠费第二月月结15号划扣"),
        ]
    if tier is Tier.HIGH:
        rows += [
            RuleRow(rule_id="adc-warning-3-high", family=F.ADC, tier=tier,
                    trigger=Trigger.CALENDAR, decision=D.WARNING, warning_level=3,
                    arrears_month=3, day=WARNING_DAY, seed_rule="ADC #10【高信用度】欠费三次预警"),
            RuleRow(rule_id="adc-deduction-3-high", family=F.ADC, tier=tier,
                    trigger=Trigger.CALENDAR, decision=D.DEDUCTION, arrears_month=3,
                    day=DEDUCTION_DAY, seed_rule="ADC #12【高信用度】欠费第三月月结15号划扣"),
        ]
    return rows


def default_rows() -> tuple[RuleRow, ...]:
    seeds = {F.ADC: "ADC", F.MAS: "MAS/短信直连", F.SMS_DIRECT: "MAS/短信直连",
             F.WORK_ORDER: "工单流转型 (as MAS)"}
    rows: list[RuleRow] = []
    for family in ProductFamily:
        for tier in Tier:
            rows += _common_rows(family, tier, seeds[family])
            if family is F.ADC:
                rows += _adc_extra(tier)
    return tuple(rows)


DEFAULT_RULES = RuleTable(version=1, rows=default_rows())
