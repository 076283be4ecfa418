"""SMS providers. The simulated SMSC stands in for the operator's SMS centre."""

import uuid
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from . import tables as t


class SmsProvider(Protocol):
    async def submit(self, client_ref: str, recipient: str, text: str) -> str:
        """Hand one SMS to the SMSC; returns its message id. Same client_ref → same id."""
        ...


class SimulatedSmsc:
    """Records what it receives, once per client reference (as an SMSC with duplicate
    detection on the submitter's reference would), so a resubmission after a crash between
    submit and bookkeeping does not reach the phone twice."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def submit(self, client_ref: str, recipient: str, text: str) -> str:
        s = t.smsc_received
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(s).values(smsc_message_id=f"smsc-{uuid.uuid4().hex[:16]}",
                                 client_ref=client_ref, recipient=recipient, text=text)
                .on_conflict_do_nothing(index_elements=[s.c.client_ref])
            )
            message_id = await conn.scalar(
                select(s.c.smsc_message_id).where(s.c.client_ref == client_ref))
        assert message_id is not None
        return str(message_id)
