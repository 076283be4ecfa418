"""Free text staff type into credit-control's commands (reasons, notes, approvers): a NUL is
refused with the field named (422), before PostgreSQL, which cannot store it, answers with a
bare SQLSTATE 22021."""

import pytest
from pydantic import BaseModel, ValidationError

from credit_control.credit.domain.commands import (
    AddExemption,
    ConfirmSweep,
    FinishWorkOrder,
    PutRules,
)

CASES: list[tuple[type[BaseModel], dict[str, object], str]] = [
    (AddExemption, {"exemption_id": "EX1", "customer_id": "G1", "kind": "red_list",
                    "reason": "重要\x00客户", "approver": "分管副总"}, "reason"),
    (AddExemption, {"exemption_id": "EX1", "customer_id": "G1", "kind": "red_list",
                    "reason": "重要客户", "approver": "副总\x00"}, "approver"),
    (FinishWorkOrder, {"note": "已停机\x00"}, "note"),
    (ConfirmSweep, {"note": "\x00"}, "note"),
    (PutRules, {"rows": [], "expected_version": 1, "reason": "x\x00"}, "reason"),
]


@pytest.mark.parametrize(("model", "body", "field"), CASES)
def test_a_nul_in_free_text_is_refused_naming_its_field(
    model: type[BaseModel], body: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    assert field in {e["loc"][0] for e in info.value.errors()}


def test_lines_and_tabs_in_a_note_are_fine() -> None:
    assert FinishWorkOrder(note="已在BOSS手工停机\n复核:\t王芳").note.count("\n") == 1
