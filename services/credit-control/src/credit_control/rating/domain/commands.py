"""The rating model's HTTP commands (validated at the edge; a rejected one changes nothing)."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.clock import BusinessTime, IsoMoment
from common.ids import EntityId

from ...credit.domain.commands import NO_NUL, ByToken
from .scorecard import Scorecard

Id = EntityId  # common.ids: the one pattern of ids
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]


class RunRating(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: Literal["basic", "guidance"]
    as_of: BusinessTime | None = None  # the period and windows; within business-time bounds


class PutScorecard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    card: Scorecard
    reason: Reason
    changed_by: ByToken = ""


class AddOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    override_id: Id
    # Strict, as PutProfile: a star or a limit sent as text ("5") is a client's bug, told.
    star_level: Annotated[int, Field(ge=0, le=5, strict=True)] | None  # None: unrated
    limit_fen: Annotated[int, Field(ge=0, strict=True)] | None = None  # None: the initial
    reason: Reason
    expires_at: IsoMoment
    created_by: ByToken = ""


class OverrideRequest(BaseModel):
    """The override with the customer it is for: what its stored answer is keyed on."""

    model_config = ConfigDict(frozen=True)
    customer_id: str
    override: AddOverride


class RemoveOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: Reason


class RunCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    as_of: BusinessTime | None = None


class ReviewMultiple(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    note: Reason


ChurnOutcome = Literal["retained", "churned", "unreachable"]
# Seed 003's reasons for leaving (离网原因): service, price, competition, network quality,
# moved or closed, other.
ChurnReason = Literal["service", "price", "competition", "network_quality", "moved_or_closed",
                      "other"]


class Revisit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    outcome: ChurnOutcome
    churn_reason: ChurnReason | None = None
    note: Reason
