"""Review tasks (复核): a customer put on the red list or under an emergency no-suspension
while one of its products is already sanctioned. The exemption stops every automatic sanction
from then on, but does not undo one: a credit-admin decides, per product, to restore it
(through the normal restore path) or to keep it as it is. Pure: ids, states, request bodies."""

import hashlib
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from common.contracts.credit_control import CreditState

from .commands import NO_NUL, ByToken

# Sanctioned: suspended, a suspension in flight (chain or work order), or pre-cancelled.
SANCTIONED = (CreditState.SUSPENDED, CreditState.SUSPEND_REQUESTED, CreditState.PRE_CANCEL)
REVIEW_ROLE = "credit_admin"
RESTORE_RULE_ID = "review-restore"


class ReviewStatus(StrEnum):
    OPEN = "open"
    RESTORED = "restored"  # a restore decision was taken
    KEPT = "kept"  # the sanction stays
    CLOSED = "closed"  # "restore" asked, but the product was no longer sanctioned


class ReviewDecision(StrEnum):
    RESTORE = "restore"
    KEEP = "keep"


class DecideReview(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    decision: ReviewDecision
    note: Annotated[str, Field(min_length=1, max_length=1000, pattern=NO_NUL)]
    by: ByToken = ""


def review_id(exemption_id: str, product_id: str) -> str:
    """One review per exemption and product: adding the same exemption again opens nothing."""
    return "RV-" + hashlib.md5(f"{exemption_id}|{product_id}".encode()).hexdigest()[:20]


def restore_reason(review: str, kind: str, exemption: str, by: str, note: str) -> str:
    return f"credit-admin review {review} ({kind} {exemption}): restore by {by}: {note}"
