"""What staff send to the collections cases over HTTP."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from common.clock import BusinessTime

from ...credit.domain.commands import NO_NUL


class RunCollections(BaseModel):
    """Open, settle and advance the collections cases as of a moment (idempotent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    as_of: BusinessTime
    # Only these accounts (a re-run for some accounts, a drill); left out: every account.
    account_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=64,
                                                     pattern=NO_NUL)]],
                           Field(min_length=1, max_length=1000)] | None = None


class ApproveAssociation(BaseModel):
    """A credit-admin approves associated suspension (关联停机) for one case. `as_of` (default:
    the service's clock, within business time's bounds) dates the decisions; who approved is
    the caller's token subject, never the body."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    note: Annotated[str, Field(min_length=1, max_length=1000, pattern=NO_NUL)]
    as_of: BusinessTime | None = None
