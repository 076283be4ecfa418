"""The products credit-control holds under a sanction, in billing.product_sanctions
(service_layer/sanctions.py says which moves are written). A late message never overwrites a
newer one (`as_of`)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_ENTER = text("""
    INSERT INTO billing.product_sanctions (product_id, state, as_of, decision_id)
    VALUES (:p, :state, :as_of, :d)
    ON CONFLICT (product_id) DO UPDATE
       SET state = excluded.state, as_of = excluded.as_of, decision_id = excluded.decision_id
     WHERE billing.product_sanctions.as_of <= excluded.as_of""")
_LEAVE = text("DELETE FROM billing.product_sanctions WHERE product_id = :p AND as_of <= :as_of")
_OF_PRODUCT = text(
    "SELECT state, as_of, decision_id FROM billing.product_sanctions WHERE product_id = :p")


@dataclass(frozen=True)
class Sanction:
    state: str
    as_of: datetime
    decision_id: str


async def enter(conn: AsyncConnection, product_id: str, state: str, as_of: datetime,
                decision_id: str) -> None:
    await conn.execute(_ENTER, {"p": product_id, "state": state, "as_of": as_of,
                                "d": decision_id})


async def leave(conn: AsyncConnection, product_id: str, as_of: datetime) -> None:
    await conn.execute(_LEAVE, {"p": product_id, "as_of": as_of})


async def of_product(conn: AsyncConnection, product_id: str) -> Sanction | None:
    row = (await conn.execute(_OF_PRODUCT, {"p": product_id})).first()
    return None if row is None else Sanction(row[0], row[1], row[2])
