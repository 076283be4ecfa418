"""Free text staff type into credit-control's commands (reasons, notes, approvers): a NUL is
refused with the field named (422), before PostgreSQL, which cannot store it, answers with a
bare SQLSTATE 22021. Every request model's free text: sweeps, rules, exemptions, freezes, work
orders, previews, reviews, collections (cases, promises, worklists, the red list), the rating
(scorecards, overrides, multiple checks, revisits), the simulation clock and the what-if."""

import pytest
from pydantic import BaseModel, ValidationError

from credit_control.admin.domain.clock import AdvanceClock
from credit_control.collections.domain.case_commands import ApproveAssociation, RunCollections
from credit_control.collections.domain.promise_commands import RecordPromise
from credit_control.collections.domain.worklist_commands import ClassifyCause, RecordAttempt
from credit_control.collections.entrypoints.red_list import RenewRedList
from credit_control.credit.domain.commands import (
    AddExemption,
    AddFreeze,
    ApprovePreview,
    AssignWorkOrder,
    ConfirmSweep,
    EndFreeze,
    FinishWorkOrder,
    PutRules,
)
from credit_control.credit.domain.reviews import DecideReview
from credit_control.credit.domain.rule_table import default_rows
from credit_control.rating.domain.commands import (
    AddOverride,
    PutScorecard,
    RemoveOverride,
    ReviewMultiple,
    Revisit,
)
from credit_control.rating.domain.scorecard import DEFAULT_SCORECARD
from credit_control.whatif.domain.commands import WhatIf

FREEZE = {"freeze_id": "FZ1", "scope": "channel", "value": "直销", "reason": "网络故障",
          "approver": "分管副总", "until": "2026-12-01T00:00:00+08:00"}
PROMISE = {"promise_id": "PR1", "promised_date": "2026-12-01", "amount_fen": 100,
           "reason": "资金周转"}
ATTEMPT = {"attempt_id": "AT1", "channel": "phone", "outcome": "refused",
           "refusal_reason": "对账有误"}
ROW = default_rows()[0].model_dump(mode="json")
CARD = DEFAULT_SCORECARD.model_dump(mode="json")

CASES: list[tuple[type[BaseModel], dict[str, object], str]] = [
    (AddExemption, {"exemption_id": "EX1", "customer_id": "G1", "kind": "red_list",
                    "reason": "重要\x00客户", "approver": "分管副总"}, "reason"),
    (AddExemption, {"exemption_id": "EX1", "customer_id": "G1", "kind": "red_list",
                    "reason": "重要客户", "approver": "副总\x00"}, "approver"),
    (FinishWorkOrder, {"note": "已停机\x00"}, "note"),
    (ConfirmSweep, {"note": "\x00"}, "note"),
    (PutRules, {"rows": [], "expected_version": 1, "reason": "x\x00"}, "reason"),
    (PutRules, {"rows": [{**ROW, "seed_rule": "规则\x00"}], "expected_version": 1,
                "reason": "x"}, "rows"),
    (AddFreeze, {**FREEZE, "value": "直\x00销"}, "value"),
    (AddFreeze, {**FREEZE, "reason": "故障\x00"}, "reason"),
    (EndFreeze, {"reason": "\x00"}, "reason"),
    (AssignWorkOrder, {"assignee": "王芳", "note": "\x00"}, "note"),
    (AssignWorkOrder, {"assignee": "王芳", "by": "\x00"}, "by"),
    (ApprovePreview, {"as_of": "2026-11-30T20:00:00+08:00", "fingerprint": "0" * 64,
                      "note": "\x00"}, "note"),
    (DecideReview, {"decision": "keep", "note": "保持\x00"}, "note"),
    (RecordPromise, {**PROMISE, "reason": "\x00"}, "reason"),
    (RecordPromise, {**PROMISE, "note": "\x00"}, "note"),
    (RecordAttempt, {**ATTEMPT, "note": "\x00"}, "note"),
    (RecordAttempt, {**ATTEMPT, "refusal_reason": "\x00"}, "refusal_reason"),
    (ClassifyCause, {"cause": "other", "note": "\x00"}, "note"),
    (ApproveAssociation, {"note": "\x00"}, "note"),
    (RunCollections, {"as_of": "2026-11-30T20:00:00+08:00", "account_ids": ["A\x00"]},
     "account_ids"),
    (RenewRedList, {"note": "续期\x00"}, "note"),
    (PutScorecard, {"card": CARD, "reason": "\x00"}, "reason"),
    (PutScorecard, {"card": {**CARD, "brand_points": {"A\x00": 10}}, "reason": "x"}, "card"),
    (AddOverride, {"override_id": "OV1", "star_level": 3, "reason": "\x00",
                   "expires_at": "2026-12-01T00:00:00+08:00"}, "reason"),
    (RemoveOverride, {"reason": "\x00"}, "reason"),
    (ReviewMultiple, {"note": "\x00"}, "note"),
    (Revisit, {"outcome": "retained", "note": "\x00"}, "note"),
    (AdvanceClock, {"move_id": "M1", "days": 1, "reason": "\x00"}, "reason"),
    (WhatIf, {"month": "2026-10", "version": 1, "channel": "直\x00销"}, "channel"),
]


@pytest.mark.parametrize(("model", "body", "field"), CASES)
def test_a_nul_in_free_text_is_refused_naming_its_field(
    model: type[BaseModel], body: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    assert field in {e["loc"][0] for e in info.value.errors()}


def _without_nul(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\x00", "x")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


@pytest.mark.parametrize(("model", "body", "field"), CASES)
def test_the_same_body_without_the_nul_is_accepted(
    model: type[BaseModel], body: dict[str, object], field: str
) -> None:
    """Each case above is refused for its NUL alone."""
    model.model_validate(_without_nul(body))


def test_lines_and_tabs_in_a_note_are_fine() -> None:
    assert FinishWorkOrder(note="已在BOSS手工停机\n复核:\t王芳").note.count("\n") == 1
