"""What staff send to the collections worklists over HTTP."""

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from common.clock import BusinessTime

from ...credit.domain.commands import NO_NUL
from .collections import ArrearsCause, Channel, Outcome


class RefreshWorklists(BaseModel):
    """Build or bring up to date the call and visit worklists as of a moment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    as_of: BusinessTime


class RecordAttempt(BaseModel):
    """One contact attempt. `attempt_id` is the client's: a retry returns the first answer.
    `at` defaults to the server's clock; who made it comes from the caller's token."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    attempt_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    channel: Channel
    outcome: Outcome
    at: BusinessTime | None = None
    note: Annotated[str, Field(max_length=1000, pattern=NO_NUL)] = ""
    promised_date: date | None = None
    refusal_reason: Annotated[str, Field(min_length=1, max_length=500,
                                         pattern=NO_NUL)] | None = None


class AttemptRequest(BaseModel):
    """The attempt with the entry it is for: what an attempt id's stored answer is keyed on."""

    model_config = ConfigDict(frozen=True)
    entry_id: str
    attempt: RecordAttempt


class ClassifyCause(BaseModel):
    """The arrears cause of an entry's account (欠费原因), for the monthly cause analysis."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cause: ArrearsCause
    note: Annotated[str, Field(max_length=1000, pattern=NO_NUL)] = ""
