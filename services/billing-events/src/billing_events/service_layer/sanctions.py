"""The products credit-control holds under a sanction, as far as billing has heard (its
decisions and state changes on credit.decisions.v1): a product's family is not changed while
it is suspended, pre-cancelled, or has a suspension or restore in flight (docs/billing.md).

Only moves into, within or out of a sanction are written: bill notices and warnings, most of
the topic, write nothing. A late message never overwrites a newer one (`as_of`)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import CreditState

SANCTIONED = frozenset({CreditState.SUSPEND_REQUESTED, CreditState.SUSPENDED,
                        CreditState.RESTORE_REQUESTED, CreditState.PRE_CANCEL})

_ENTER = text("""
    INSERT INTO billing.product_sanctions (product_id, state, as_of, decision_id)
    VALUES (:p, :state, :as_of, :d)
    ON CONFLICT (product_id) DO UPDATE
       SET state = excluded.state, as_of = excluded.as_of, decision_id = excluded.decision_id
     WHERE billing.product_sanctions.as_of <= excluded.as_of""")
_LEAVE = text("DELETE FROM billing.product_sanctions WHERE product_id = :p AND as_of <= :as_of")


@dataclass(frozen=True)
class Sanction:
    state: str
    as_of: datetime
    decision_id: str


async def record(conn: AsyncConnection, product_id: str, before: CreditState,
                 after: CreditState, as_of: datetime, decision_id: str) -> None:
    """A product's move as credit-control published it (a decision or a state change)."""
    if after in SANCTIONED:
        await conn.execute(_ENTER, {"p": product_id, "state": after.value, "as_of": as_of,
                                    "d": decision_id})
    elif before in SANCTIONED:
        await conn.execute(_LEAVE, {"p": product_id, "as_of": as_of})


async def of_product(conn: AsyncConnection, product_id: str) -> Sanction | None:
    row = (await conn.execute(text(
        "SELECT state, as_of, decision_id FROM billing.product_sanctions WHERE product_id = :p"),
        {"p": product_id})).first()
    return None if row is None else Sanction(row[0], row[1], row[2])
