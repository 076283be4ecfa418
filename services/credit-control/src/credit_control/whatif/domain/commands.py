"""What a what-if request says (POST /v1/rules/what-if)."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.clock import BusinessMonth

from ...credit.domain.rule_table import RuleRow


class WhatIf(BaseModel):
    """Replay `month` under the current rule table and under a draft: its `rows` (a whole
    rule table, as PUT /v1/rules takes it, not yet published) or a stored `version`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    month: BusinessMonth
    rows: Annotated[tuple[RuleRow, ...], Field(max_length=500)] | None = None
    version: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_draft(self) -> "WhatIf":
        if (self.rows is None) == (self.version is None):
            raise ValueError("give the draft as rows or as a stored version, exactly one")
        return self
