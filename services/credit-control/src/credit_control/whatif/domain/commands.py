"""What a what-if request says (POST /v1/rules/what-if)."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.clock import BusinessMonth, IsoMoment

from ...credit.domain.commands import NO_NUL
from ...credit.domain.rule_table import RuleRow


class WhatIf(BaseModel):
    """Replay `month` under the current rule table and under a draft: its `rows` (a whole
    rule table, as PUT /v1/rules takes it, not yet published) or a stored `version`;
    optionally for one sales `channel` only."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    month: BusinessMonth
    rows: Annotated[tuple[RuleRow, ...], Field(max_length=500)] | None = None
    version: Annotated[int, Field(ge=1)] | None = None
    # The moment the question is asked (default now): the month must be over by then.
    as_of: IsoMoment | None = None
    # Only the products of one sales channel (billing's master data); default all.
    channel: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)] | None = None

    @model_validator(mode="after")
    def _one_draft(self) -> "WhatIf":
        if (self.rows is None) == (self.version is None):
            raise ValueError("give the draft as rows or as a stored version, exactly one")
        return self
