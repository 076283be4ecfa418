"""What staff send to record a promise to pay (承诺缴费) over HTTP."""

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from common.clock import BusinessTime
from common.contracts.bounds import FEN_LIMIT

from ...credit.domain.commands import NO_NUL

PositiveFen = Annotated[int, Field(ge=1, le=FEN_LIMIT)]


class Instalment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    due_on: date
    amount_fen: PositiveFen


class RecordPromise(BaseModel):
    """A promise on a worklist entry. `promise_id` is the client's idempotency key: the same
    id and body again answer the first answer, another body 409. `at` (business time)
    defaults to the server's clock; who recorded it comes from the caller's token."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    promise_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    promised_date: date
    amount_fen: PositiveFen
    instalments: Annotated[list[Instalment], Field(max_length=24)] = []
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
    note: Annotated[str, Field(max_length=1000, pattern=NO_NUL)] = ""
    at: BusinessTime | None = None


class PromiseRequest(BaseModel):
    """The promise with the entry it is for: what its stored answer is keyed on."""

    model_config = ConfigDict(frozen=True)
    entry_id: str
    promise: RecordPromise


class CheckPromises(BaseModel):
    """Mark the open promises kept or broken as of a moment (the sweep does it too)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    as_of: BusinessTime
