"""Collections worklists (欠费催缴): who is to be called or visited, what each contact attempt
gave, and why the arrears arose. Pure: no I/O.

Seed 001: "當月出賬后,將500元以上高額欠費派單至前端各主任" → the *call* worklist, one entry per
account owing more than the threshold, for the group's account manager.
Seed 002: "25日后...不少于三次的电话催缴...对上月电话催缴三次后仍未缴费的用户(2个月欠费用户)进行
上门派单催缴,注明预约缴费时间或拒付原因" → the *visit* worklist (visit orders), one entry per
account owing in two or more bill months, from the 6th of the month ("每月6日后").
Seed 000: the arrears-cause classes and the monthly Pareto table (2011年9-11月欠费原因分析).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

CALL_THRESHOLD_FEN = 50_000  # 500 yuan: "500元以上高額欠費"
VISIT_MIN_MONTHS = 2  # "2个月欠费用户"
VISIT_FROM_DAY = 6  # "每月6日后 ... 上门派单"


class WorklistKind(StrEnum):
    CALL = "call"  # 电话催缴: high arrears, for the account manager
    VISIT = "visit"  # 上门催缴派单: two-month arrears, a visit order

    @property
    def label(self) -> str:
        return {"call": "高额欠费电话催缴", "visit": "两个月欠费上门催缴"}[self.value]


class EntryStatus(StrEnum):
    OPEN = "open"  # on the list, nobody reached yet
    CONTACTED = "contacted"  # tried or reached, no commitment yet
    PROMISED = "promised"  # 预约缴费时间: a promised payment date
    REFUSED = "refused"  # 拒付原因: the customer refuses to pay
    PAID = "paid"  # the account's arrears cleared (closes itself)
    CLOSED = "closed"  # closed by staff without payment (e.g. handed to legal action)


ACTIVE = frozenset({EntryStatus.OPEN, EntryStatus.CONTACTED, EntryStatus.PROMISED,
                    EntryStatus.REFUSED})


class Channel(StrEnum):
    PHONE = "phone"  # 电话催缴
    VISIT = "visit"  # 上门
    SMS = "sms"


class Outcome(StrEnum):
    NO_ANSWER = "no_answer"  # 未接通
    REACHED = "reached"  # 已联系, no promise yet
    PROMISED = "promised"  # 预约缴费时间
    REFUSED = "refused"  # 拒付
    CLOSE = "close"  # staff close the entry (with a note): collection stops here


class ArrearsCause(StrEnum):
    """Seed 000's cause classes (in the seed's order), and seed 001's two commonest causes."""

    EXPIRED_PROMOTION = "expired_promotion"
    SUSPENSION_GAP = "suspension_gap"
    MALICIOUS = "malicious"
    SERVICE_FAULT = "service_fault"
    LEFT_NETWORK = "left_network"
    MOVED_AWAY = "moved_away"
    OTHER = "other"

    @property
    def label(self) -> str:
        return CAUSE_LABELS[self]


CAUSE_LABELS: Mapping[ArrearsCause, str] = {
    ArrearsCause.EXPIRED_PROMOTION: "体验营销方案到期未取消造成欠费",
    ArrearsCause.SUSPENSION_GAP: "欠费停用机制不完善造成欠费",
    ArrearsCause.MALICIOUS: "客户恶意欠费",
    ArrearsCause.SERVICE_FAULT: "业务故障造成欠费",
    ArrearsCause.LEFT_NETWORK: "离网不拆机",
    ArrearsCause.MOVED_AWAY: "客户搬迁等原因不用",
    ArrearsCause.OTHER: "其他原因",
}


class WorklistError(ValueError):
    """An attempt or change the entry's state does not allow."""


# --- who is on which list ---------------------------------------------------------------------

@dataclass(frozen=True)
class WorklistRules:
    call_threshold_fen: int = CALL_THRESHOLD_FEN
    visit_min_months: int = VISIT_MIN_MONTHS
    visit_from_day: int = VISIT_FROM_DAY

    def kinds(self, dues: Iterable[tuple[date, int]], today: date) -> list[WorklistKind]:
        """The lists an account belongs on `today`, given what it owes per bill month."""
        owing = closed_dues(dues, today)
        arrears = sum(fen for _, fen in owing)
        kinds = []
        if arrears > self.call_threshold_fen:  # "500元以上": 500.00 exactly is not above
            kinds.append(WorklistKind.CALL)
        if len(owing) >= self.visit_min_months and today.day >= self.visit_from_day:
            kinds.append(WorklistKind.VISIT)
        return kinds


def closed_dues(dues: Iterable[tuple[date, int]], today: date) -> list[tuple[date, int]]:
    """The bill months before `today`'s month still owing: a month's bill is out only after
    it ends, so a later month (a billing position newer than `today`) does not count yet."""
    first = today.replace(day=1)
    return sorted((m, fen) for m, fen in dues if m < first and fen > 0)


# --- an entry's life -------------------------------------------------------------------------

_AFTER: Mapping[Outcome, EntryStatus] = {
    Outcome.NO_ANSWER: EntryStatus.CONTACTED,
    Outcome.REACHED: EntryStatus.CONTACTED,
    Outcome.PROMISED: EntryStatus.PROMISED,
    Outcome.REFUSED: EntryStatus.REFUSED,
    Outcome.CLOSE: EntryStatus.CLOSED,
}


@dataclass(frozen=True)
class Attempt:
    """One contact attempt (催缴记录) as recorded: when, how, by whom, with what result."""

    on: date  # the attempt's business date
    channel: Channel
    outcome: Outcome
    promised_date: date | None = None
    refusal_reason: str | None = None
    note: str = ""
    # How many days ahead a promised date may lie (the promise policy's longest, a
    # credit-admin's): a date years away would never count as broken, and the account would
    # drop out of the chase while it shows "promised".
    promise_horizon_days: int = 30

    def __post_init__(self) -> None:
        if self.outcome is Outcome.PROMISED:
            if self.promised_date is None:
                raise WorklistError("a promise needs promised_date (预约缴费时间)")
            if self.promised_date < self.on:
                raise WorklistError(
                    f"promised_date {self.promised_date} is before the attempt ({self.on})")
            ahead = (self.promised_date - self.on).days
            if ahead > self.promise_horizon_days:
                raise WorklistError(
                    f"promised_date {self.promised_date} is {ahead} days after the attempt "
                    f"({self.on}): at most {self.promise_horizon_days} days")
        elif self.promised_date is not None:
            raise WorklistError("promised_date belongs to outcome 'promised' only")
        if self.outcome is Outcome.REFUSED:
            if not (self.refusal_reason or "").strip():
                raise WorklistError("a refusal needs refusal_reason (拒付原因)")
        elif self.refusal_reason is not None:
            raise WorklistError("refusal_reason belongs to outcome 'refused' only")
        if self.outcome is Outcome.CLOSE and not self.note.strip():
            raise WorklistError("closing an entry needs a note saying why")


def after_attempt(status: EntryStatus, attempt: Attempt) -> EntryStatus:
    """The entry's status once `attempt` is recorded. A later attempt replaces an earlier
    promise or refusal (a broken promise is called again); a paid or closed entry takes none."""
    if status not in ACTIVE:
        raise WorklistError(f"the entry is {status.value}: no more attempts")
    return _AFTER[attempt.outcome]


def after_refresh(status: EntryStatus, still_owing: bool) -> EntryStatus:
    """A refresh closes an active entry whose account owes nothing any more, and reopens a
    paid one whose account owes the same bill month again (a reversed payment)."""
    if status in ACTIVE and not still_owing:
        return EntryStatus.PAID
    if status is EntryStatus.PAID and still_owing:
        return EntryStatus.OPEN
    return status


# --- the monthly cause analysis (欠费原因分析) ---------------------------------------------------

@dataclass(frozen=True)
class CauseRow:
    cause: ArrearsCause
    amount_fen: int
    accounts: int
    share_bp: int  # hundredths of a percent: 2691 = 26.91 %
    cumulative_bp: int

    @property
    def label(self) -> str:
        return self.cause.label


@dataclass(frozen=True)
class CauseAnalysis:
    rows: tuple[CauseRow, ...]
    total_fen: int


def percent_bp(part: int, whole: int) -> int:
    """part / whole in hundredths of a percent, rounded half up, in integers only."""
    if whole <= 0:
        return 0
    return (part * 20_000 + whole) // (2 * whole)


def cause_analysis(amounts: Mapping[ArrearsCause, tuple[int, int]]) -> CauseAnalysis:
    """The Pareto table: causes by amount (largest first; ties in the seed's order), each
    with its share and the cumulative share, both taken from fen sums so the last is 100 %.
    `amounts` maps a cause to (amount_fen, accounts)."""
    order = list(ArrearsCause)
    ranked = sorted(((c, a, n) for c, (a, n) in amounts.items() if a > 0),
                    key=lambda r: (-r[1], order.index(r[0])))
    total = sum(a for _, a, _ in ranked)
    rows, running = [], 0
    for cause, amount, accounts in ranked:
        running += amount
        rows.append(CauseRow(cause, amount, accounts, percent_bp(amount, total),
                             percent_bp(running, total)))
    return CauseAnalysis(tuple(rows), total)


def bp_text(bp: int) -> str:
    """2691 → '26.91'."""
    return f"{bp // 100}.{bp % 100:02d}"
