"""Commands credit-control accepts over HTTP."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class RunSweep(BaseModel):
    """Evaluate the calendar rules for every owing product as of a moment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sweep_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    as_of: datetime
