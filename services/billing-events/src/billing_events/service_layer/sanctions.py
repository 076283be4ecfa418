"""The products credit-control holds under a sanction, as far as billing has heard (its
decisions and state changes on credit.decisions.v1): a product's family is not changed while
it is suspended, pre-cancelled, or has a suspension or restore in flight (docs/billing.md).

Only moves into, within or out of a sanction are written (adapters/sanction_sql.py): bill
notices and warnings, most of the topic, write nothing."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import CreditState

from ..adapters import sanction_sql
from ..adapters.sanction_sql import Sanction

SANCTIONED = frozenset({CreditState.SUSPEND_REQUESTED, CreditState.SUSPENDED,
                        CreditState.RESTORE_REQUESTED, CreditState.PRE_CANCEL})


async def record(conn: AsyncConnection, product_id: str, before: CreditState,
                 after: CreditState, as_of: datetime, decision_id: str) -> None:
    """A product's move as credit-control published it (a decision or a state change)."""
    if after in SANCTIONED:
        await sanction_sql.enter(conn, product_id, after.value, as_of, decision_id)
    elif before in SANCTIONED:
        await sanction_sql.leave(conn, product_id, as_of)


async def of_product(conn: AsyncConnection, product_id: str) -> Sanction | None:
    return await sanction_sql.of_product(conn, product_id)
