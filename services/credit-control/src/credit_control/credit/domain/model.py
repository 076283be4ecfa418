"""The credit state machine of one product instance. Pure: legal moves live in one table."""

from enum import StrEnum

from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily

S = CreditState


class Action(StrEnum):
    WARN = "warn"
    SUSPENSION_WARN = "suspension_warn"
    CLEAR = "clear"  # arrears paid before any suspension
    SUSPEND_NOW = "suspend_now"  # ADC: BOSS flips the status, done at once
    REQUEST_SUSPEND = "request_suspend"  # chain or manual: done when confirmed
    CONFIRM_SUSPEND = "confirm_suspend"
    RESTORE_NOW = "restore_now"
    REQUEST_RESTORE = "request_restore"
    CONFIRM_RESTORE = "confirm_restore"
    PRE_CANCEL = "pre_cancel"
    DEDUCT = "deduct"  # 划扣: money moves, the service state does not
    RESTART = "restart"  # the ladder restarts (oldest owing month moved on, tier went up)
    # A reversed payment (冲正/退票) re-opened arrears: back on the ladder, with notice; a
    # restore already in flight goes on (the product owes again, and is told why).
    REOPEN = "reopen"


_BEFORE_SUSPENSION = (S.NORMAL, S.WARNED, S.SUSPENSION_WARNED)

TRANSITIONS: dict[tuple[CreditState, Action], CreditState] = {
    **{(s, Action.WARN): S.WARNED for s in (S.NORMAL, S.WARNED)},
    # From suspension_warned too: a warning that no longer counts (domain/ladder.py) is
    # replaced by a fresh one with its own deadline.
    **{(s, Action.SUSPENSION_WARN): S.SUSPENSION_WARNED for s in _BEFORE_SUSPENSION},
    (S.SUSPENSION_WARNED, Action.RESTART): S.WARNED,
    (S.NORMAL, Action.REOPEN): S.WARNED,
    # The payment that asked for the restore bounced before the restore was confirmed: its
    # work order or chain command is not called back (it may be done already); the product
    # is told it owes again now, and the ladder takes it from normal once restored.
    (S.RESTORE_REQUESTED, Action.REOPEN): S.RESTORE_REQUESTED,
    **{(s, Action.CLEAR): S.NORMAL for s in (S.WARNED, S.SUSPENSION_WARNED)},
    **{(s, Action.SUSPEND_NOW): S.SUSPENDED for s in _BEFORE_SUSPENSION},
    **{(s, Action.REQUEST_SUSPEND): S.SUSPEND_REQUESTED
       for s in (*_BEFORE_SUSPENSION, S.RESTORE_REQUESTED)},
    (S.SUSPEND_REQUESTED, Action.CONFIRM_SUSPEND): S.SUSPENDED,
    # Pre-cancellation (预拆机) keeps the line during the retention period, so paying the debt
    # (or a credit-admin's review) restores it like a suspension: nothing is cancelled yet.
    **{(s, Action.RESTORE_NOW): S.NORMAL for s in (S.SUSPENDED, S.PRE_CANCEL)},
    # A payment racing a suspension in flight: restore wins, the newer command supersedes.
    **{(s, Action.REQUEST_RESTORE): S.RESTORE_REQUESTED
       for s in (S.SUSPENDED, S.SUSPEND_REQUESTED, S.PRE_CANCEL)},
    (S.RESTORE_REQUESTED, Action.CONFIRM_RESTORE): S.NORMAL,
    (S.SUSPENDED, Action.PRE_CANCEL): S.PRE_CANCEL,
    **{(s, Action.DEDUCT): s for s in S if s is not S.PRE_CANCEL},
}


class IllegalTransition(Exception):
    def __init__(self, state: CreditState, action: Action) -> None:
        super().__init__(f"cannot {action.value} a product that is {state.value}")
        self.state = state
        self.action = action


def next_state(state: CreditState, action: Action) -> CreditState:
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action) from None


def can(state: CreditState, action: Action) -> bool:
    return (state, action) in TRANSITIONS


def action_for(decision: DecisionType, family: ProductFamily) -> Action:
    """How a decision acts on a product of this family."""
    if decision is DecisionType.SUSPEND:
        return Action.SUSPEND_NOW if family is ProductFamily.ADC else Action.REQUEST_SUSPEND
    if decision is DecisionType.RESTORE:
        return Action.RESTORE_NOW if family is ProductFamily.ADC else Action.REQUEST_RESTORE
    return _NOTICE_ACTIONS[decision]


_NOTICE_ACTIONS = {
    DecisionType.BILL_NOTICE: Action.WARN,
    DecisionType.WARNING: Action.WARN,
    DecisionType.SUSPENSION_WARNING: Action.SUSPENSION_WARN,
    DecisionType.ARREARS_CLEARED: Action.CLEAR,
    DecisionType.PAYMENT_REVERSED: Action.REOPEN,  # back on the ladder, with notice
    DecisionType.PRE_CANCEL: Action.PRE_CANCEL,
    DecisionType.DEDUCTION: Action.DEDUCT,
}


def from_states(action: Action) -> tuple[CreditState, ...]:
    """Every state this action is legal in (what a set-based sweep may select)."""
    return tuple(s for s in S if can(s, action))
