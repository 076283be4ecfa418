"""Collections escalation (欠费清收三阶段): a case per account in arrears past suspension,
moving through three phases of configurable length. Pure: no I/O.

Seed 002 (第一篇): "第一阶段结束(10天)…第二阶段结束(10天)…对户采取强制措施,关联停机…第三阶段结束
(10天)…欠费用户拆机处理,实施法律清缴". Read as (docs/collections.md "Escalation"):

- phase 1, investigate and remind (调查、催缴): the call and visit worklists;
- phase 2, forced measures (强制措施), including associated suspension (关联停机) of the
  customer's products that owe nothing themselves, once a credit-admin approved it for the case;
- phase 3, disconnection (拆机: pre-cancellation of the case account's suspended products) and
  referral for legal collection (法律清缴).

A phase n starts `sum(lengths[:n-1])` days after the case opened; phase 3 lasts until the
arrears are paid or staff close the case (the seed's 欠费清缴结束 is a meeting, not a state).
"""

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum, StrEnum

DEFAULT_PHASE_DAYS = (10, 10, 10)  # "第一阶段结束(10天)", second and third likewise
ASSOCIATE_RULE_ID = "collections-associated-suspension"
RESTORE_RULE_ID = "collections-associated-restore"
DISCONNECT_RULE_ID = "collections-disconnection"


class Phase(IntEnum):
    INVESTIGATE = 1  # 调查、催缴: the worklists
    FORCED = 2  # 强制措施、关联停机
    DISCONNECT = 3  # 拆机、法律清缴

    @property
    def label(self) -> str:
        return {1: "第一阶段:调查催缴", 2: "第二阶段:强制措施、关联停机",
                3: "第三阶段:拆机、法律清缴"}[self.value]


class CaseStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"  # the account's arrears cleared: associations restored, case closed
    CLOSED = "closed"  # closed by a credit-admin (with a reason)


class Step(StrEnum):
    """What a case's log records: each a decision with its reason, by whom, when."""

    OPEN = "open"
    PHASE = "phase"  # entered phase 2 or 3
    APPROVE_ASSOCIATION = "approve_association"
    ASSOCIATED_SUSPENSION = "associated_suspension"
    ASSOCIATION_SKIPPED = "association_skipped"  # re-check at execution refused
    DISCONNECTION = "disconnection"
    DISCONNECTION_SKIPPED = "disconnection_skipped"
    LEGAL_REFERRAL = "legal_referral"
    ASSOCIATED_RESTORE = "associated_restore"
    CLOSE = "close"


class EscalationError(ValueError):
    """A request the case's state does not allow (answered 409/422)."""


@dataclass(frozen=True)
class PhasePlan:
    """How long each phase lasts, in business days (settings, default 10 / 10 / 10)."""

    days: tuple[int, int, int] = DEFAULT_PHASE_DAYS

    def __post_init__(self) -> None:
        if len(self.days) != 3 or any(d < 1 for d in self.days):
            raise ValueError(f"three phase lengths of at least 1 day, not {self.days}")

    def starts(self, opened_on: date) -> dict[Phase, date]:
        """The day each phase begins."""
        first, second, _ = self.days
        return {Phase.INVESTIGATE: opened_on,
                Phase.FORCED: opened_on + timedelta(days=first),
                Phase.DISCONNECT: opened_on + timedelta(days=first + second)}

    def phase_on(self, opened_on: date, today: date) -> Phase:
        """The phase a case opened on `opened_on` is in on `today` (never before phase 1)."""
        current = Phase.INVESTIGATE
        for phase, start in self.starts(opened_on).items():
            if today >= start:
                current = phase
        return current

    def ends_on(self, opened_on: date) -> date:
        """The last day of phase 3's ten days (the seed's closing meeting: 欠费清缴结束)."""
        return opened_on + timedelta(days=sum(self.days) - 1)

    def phases_entered(self, opened_on: date, was: Phase, today: date) -> list[Phase]:
        """The phases a case moves into between its recorded phase `was` and `today`, in
        order: a run that missed days still records each step (phase 2 before phase 3)."""
        now = self.phase_on(opened_on, today)
        return [p for p in Phase if was < p <= now]


def case_id(account_id: str, opened_on: date) -> str:
    """One case per account and opening day: a re-run opens nothing twice."""
    return "CC-" + hashlib.md5(f"{account_id}|{opened_on.isoformat()}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Candidate:
    """One of the customer's products, as associated suspension sees it at execution."""

    product_id: str
    account_id: str
    state: str
    product_amount_due_fen: int


ASSOCIABLE_STATES = frozenset({"normal", "warned", "suspension_warned"})


def association_refusal(case_status: CaseStatus, phase: Phase, approved: bool,
                        arrears_fen: int, exempt: bool,
                        promise: tuple[str, date] | None = None) -> str | None:
    """Why the case may not suspend associated products now (None: it may). Checked when a
    credit-admin approves and again at execution: never cut off a customer by mistake.
    `promise`: a promise to pay of the case's account that stands (open, not broken; its
    id and the date it defers to): while it stands the account is not suspended
    (docs/collections.md "Promises to pay"), nor its customer's other products for it."""
    if case_status is not CaseStatus.OPEN:
        return f"the case is {case_status.value}"
    if phase < Phase.FORCED:
        return "associated suspension is a phase-2 measure; the case is in phase 1"
    if not approved:
        return "no credit-admin approval for this case"
    if arrears_fen <= 0:
        return "the account's arrears are paid"
    if exempt:
        return "the customer is on the red list or under emergency no-suspension"
    if promise is not None:
        return (f"promise to pay {promise[0]} stands (next payment due "
                f"{promise[1].isoformat()}): the account is not suspended while it does")
    return None


def product_refusal(candidate: Candidate) -> str | None:
    """Why this product is not associated-suspended (None: it is): only the customer's
    products that owe nothing themselves (its own ladder decides one that does) and are not
    sanctioned already. A sibling in the case's own account with nothing of the debt
    allocated to it qualifies too."""
    if candidate.product_amount_due_fen > 0:
        return "the product is in arrears itself (its own ladder decides)"
    if candidate.state not in ASSOCIABLE_STATES:
        return f"the product is {candidate.state}"
    return None


def associate_reason(case: str, account_id: str, arrears_fen: int, approved_by: str,
                     note: str) -> str:
    return (f"关联停机: collections case {case} (account {account_id} owes "
            f"{arrears_fen} fen), approved by {approved_by}: {note}")


def restore_reason(case: str, account_id: str) -> str:
    return f"关联停机 lifted: account {account_id}'s arrears paid, collections case {case} closed"


def disconnect_reason(case: str, start: date) -> str:
    return f"拆机: collections case {case} entered phase 3 on {start.isoformat()}"
