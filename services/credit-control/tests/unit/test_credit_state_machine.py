"""credit_control.credit.domain.model: every (state, action) pair, and how decisions act per
family."""

import itertools

import pytest

from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily
from credit_control.credit.domain.model import (
    TRANSITIONS,
    Action,
    IllegalTransition,
    action_for,
    can,
    next_state,
)

S = CreditState
A = Action

# Written out by hand from the design, independent of the module's table.
LEGAL: dict[tuple[CreditState, Action], CreditState] = {
    (S.NORMAL, A.WARN): S.WARNED,
    (S.NORMAL, A.SUSPENSION_WARN): S.SUSPENSION_WARNED,
    (S.NORMAL, A.SUSPEND_NOW): S.SUSPENDED,
    (S.NORMAL, A.REQUEST_SUSPEND): S.SUSPEND_REQUESTED,
    (S.WARNED, A.WARN): S.WARNED,
    (S.WARNED, A.SUSPENSION_WARN): S.SUSPENSION_WARNED,
    (S.WARNED, A.CLEAR): S.NORMAL,
    (S.WARNED, A.SUSPEND_NOW): S.SUSPENDED,
    (S.WARNED, A.REQUEST_SUSPEND): S.SUSPEND_REQUESTED,
    (S.SUSPENSION_WARNED, A.CLEAR): S.NORMAL,
    (S.SUSPENSION_WARNED, A.SUSPENSION_WARN): S.SUSPENSION_WARNED,  # a warning replaced
    (S.SUSPENSION_WARNED, A.RESTART): S.WARNED,  # the ladder restarts for a new month
    (S.NORMAL, A.REOPEN): S.WARNED,  # a reversed payment: back on the ladder, with notice
    # …while the restore it asked for is in flight: the restore goes on, the notice now
    (S.RESTORE_REQUESTED, A.REOPEN): S.RESTORE_REQUESTED,
    (S.SUSPENSION_WARNED, A.SUSPEND_NOW): S.SUSPENDED,
    (S.SUSPENSION_WARNED, A.REQUEST_SUSPEND): S.SUSPEND_REQUESTED,
    (S.SUSPEND_REQUESTED, A.CONFIRM_SUSPEND): S.SUSPENDED,
    (S.SUSPEND_REQUESTED, A.REQUEST_RESTORE): S.RESTORE_REQUESTED,  # payment races a suspend
    (S.SUSPENDED, A.RESTORE_NOW): S.NORMAL,
    (S.SUSPENDED, A.REQUEST_RESTORE): S.RESTORE_REQUESTED,
    (S.SUSPENDED, A.PRE_CANCEL): S.PRE_CANCEL,
    # the line is kept during pre-cancellation: paying (or a review) restores it
    (S.PRE_CANCEL, A.RESTORE_NOW): S.NORMAL,
    (S.PRE_CANCEL, A.REQUEST_RESTORE): S.RESTORE_REQUESTED,
    (S.RESTORE_REQUESTED, A.CONFIRM_RESTORE): S.NORMAL,
    (S.RESTORE_REQUESTED, A.REQUEST_SUSPEND): S.SUSPEND_REQUESTED,  # new arrears mid-restore
    # 划扣 moves money, never the service state; a pre-cancelled number is not deducted
    **{(s, A.DEDUCT): s for s in S if s is not S.PRE_CANCEL},
}

ALL_PAIRS = list(itertools.product(CreditState, Action))


def test_every_state_and_action_is_covered() -> None:
    assert len(ALL_PAIRS) == len(CreditState) * len(Action) == 91


def test_transition_table_is_exactly_the_legal_moves() -> None:
    assert TRANSITIONS == LEGAL


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=lambda v: str(v))
def test_every_pair(state: CreditState, action: Action) -> None:
    if (state, action) in LEGAL:
        assert can(state, action)
        assert next_state(state, action) is LEGAL[(state, action)]
    else:
        assert not can(state, action)
        with pytest.raises(IllegalTransition) as info:
            next_state(state, action)
        assert info.value.state is state
        assert info.value.action is action
        assert str(info.value) == f"cannot {action.value} a product that is {state.value}"
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__  # `from None`: no KeyError in the traceback


def test_pre_cancel_only_leaves_by_a_restore() -> None:
    assert {a for a in Action if can(S.PRE_CANCEL, a)} == {A.RESTORE_NOW, A.REQUEST_RESTORE}


def test_every_state_has_a_way_out() -> None:
    for state in CreditState:
        assert any(can(state, a) for a in Action), state


CHAIN_OR_MANUAL = [ProductFamily.MAS, ProductFamily.SMS_DIRECT, ProductFamily.WORK_ORDER]


@pytest.mark.parametrize(
    ("decision", "family", "action"),
    [
        (DecisionType.SUSPEND, ProductFamily.ADC, A.SUSPEND_NOW),
        (DecisionType.RESTORE, ProductFamily.ADC, A.RESTORE_NOW),
        *[(DecisionType.SUSPEND, f, A.REQUEST_SUSPEND) for f in CHAIN_OR_MANUAL],
        *[(DecisionType.RESTORE, f, A.REQUEST_RESTORE) for f in CHAIN_OR_MANUAL],
        *[
            (d, f, a)
            for f in ProductFamily
            for d, a in [
                (DecisionType.BILL_NOTICE, A.WARN),
                (DecisionType.WARNING, A.WARN),
                (DecisionType.SUSPENSION_WARNING, A.SUSPENSION_WARN),
                (DecisionType.ARREARS_CLEARED, A.CLEAR),
                (DecisionType.PRE_CANCEL, A.PRE_CANCEL),
            ]
        ],
    ],
    ids=lambda v: str(v),
)
def test_action_for(decision: DecisionType, family: ProductFamily, action: Action) -> None:
    assert action_for(decision, family) is action


def _actions_of(family: ProductFamily) -> set[Action]:
    return {action_for(d, family) for d in DecisionType if d is not DecisionType.DEDUCTION} | (
        set() if family is ProductFamily.ADC else {A.CONFIRM_SUSPEND, A.CONFIRM_RESTORE}
    )


def reachable(family: ProductFamily) -> set[CreditState]:
    """States a product of this family can reach from NORMAL with its own actions."""
    seen, todo = {S.NORMAL}, [S.NORMAL]
    actions = _actions_of(family)
    while todo:
        state = todo.pop()
        for action in actions:
            if can(state, action) and (nxt := next_state(state, action)) not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_adc_never_waits_for_a_confirmation() -> None:
    assert reachable(ProductFamily.ADC) == {
        S.NORMAL, S.WARNED, S.SUSPENSION_WARNED, S.SUSPENDED, S.PRE_CANCEL,
    }


@pytest.mark.parametrize("family", CHAIN_OR_MANUAL)
def test_chain_and_manual_families_reach_every_state(family: ProductFamily) -> None:
    assert reachable(family) == set(CreditState)
