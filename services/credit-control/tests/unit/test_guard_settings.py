"""PUT /v1/guard (commands.PutGuard): a field left out stays as it is, for every field alike:
moving only the share once reset the minimum of active products to 0, so even a small
branch's month-end sweep could be held."""

import pytest
from pydantic import ValidationError

from credit_control.credit.domain.commands import GUARD_FIELDS, PutGuard

CURRENT = {"enabled": True, "max_share": 0.05, "min_active": 1000,
           "needs_approved_preview": True}


def test_only_the_share_given_keeps_the_rest() -> None:
    assert PutGuard(max_share=0.2).applied_to(CURRENT) == {**CURRENT, "max_share": 0.2}


def test_each_field_given_alone_changes_only_itself() -> None:
    for field, value in (("enabled", False), ("min_active", 0), ("max_share", 1.0),
                         ("needs_approved_preview", False)):
        assert PutGuard(**{field: value}).applied_to(CURRENT) == {**CURRENT, field: value}


def test_an_empty_body_changes_nothing_and_every_field_is_known() -> None:
    assert PutGuard().applied_to(CURRENT) == CURRENT
    assert set(GUARD_FIELDS) == set(PutGuard.model_fields) - {"changed_by"}


@pytest.mark.parametrize("body", [{"max_share": 0}, {"max_share": 1.5}, {"min_active": -1},
                                  {"min_active": 10**10}, {"shares": 0.2},
                                  {"max_share": True}, {"enabled": "yes"},
                                  {"min_active": "1000"}])
def test_out_of_bounds_mistyped_or_unknown_fields_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PutGuard.model_validate(body)
