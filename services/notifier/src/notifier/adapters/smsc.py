"""The simulated SMSC: stands in for the operator's SMS centre, in process, its state in
PostgreSQL (so it survives a crash of the notifier like a real SMSC would).

It accepts submits and answers with a message id, once per client reference (as an SMSC with
duplicate detection on the submitter's reference would), sends a delivery receipt after
`receipt_delay_s`, and can be told to fail, to be slow, or to be down (`SmscFaults`, set from
settings and changed at run time through PUT /v1/smsc/faults).
"""

import asyncio
import random
from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock
from common.ids import new_hex

from .providers import Receipt, Submission, SubmitOutcome


class SmscFaults(BaseModel):
    down: bool = False  # every submit raises: the SMSC cannot be reached
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # share of submits refused
    fail_recipients: list[str] = Field(default_factory=list, max_length=1000)  # always refused
    latency_s: float = Field(default=0.0, ge=0.0, le=60.0)  # answer delay after accepting
    receipt_delay_s: float = Field(default=0.2, ge=0.0, le=86_400.0)
    undeliverable_recipients: list[str] = Field(default_factory=list, max_length=1000)


class SmscUnavailable(ConnectionError):
    pass


_ACCEPT = text(
    "INSERT INTO notifier.smsc_received "
    "(smsc_message_id, client_ref, recipient, text, segments, received_at, receipt_due_at) "
    "SELECT s.id, s.ref, s.recipient, s.text, s.segments, :at, :due FROM unnest("
    "CAST(:ids AS text[]), CAST(:refs AS text[]), CAST(:recipients AS text[]), "
    "CAST(:texts AS text[]), CAST(:segments AS int[])) AS s(id, ref, recipient, text, segments) "
    "ON CONFLICT (client_ref) DO UPDATE SET submits = smsc_received.submits + 1 "
    "RETURNING client_ref, smsc_message_id"
)
_TAKE_RECEIPTS = text(
    "UPDATE notifier.smsc_received r SET receipt_sent_at = :at, receipt_status = "
    "CASE WHEN r.recipient = ANY(CAST(:undeliverable AS text[])) THEN 'rejected' "
    "ELSE 'delivered' END "
    "WHERE r.smsc_message_id IN (SELECT smsc_message_id FROM notifier.smsc_received "
    "  WHERE receipt_sent_at IS NULL AND receipt_due_at <= :at "
    "  ORDER BY receipt_due_at LIMIT :limit FOR UPDATE SKIP LOCKED) "
    "RETURNING r.smsc_message_id, r.receipt_status, r.receipt_due_at"
)


class SimulatedSmsc:
    def __init__(self, engine: AsyncEngine, clock: Clock, faults: SmscFaults | None = None,
                 rng: random.Random | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self.faults = faults or SmscFaults()
        self._rng = rng or random.Random()

    async def submit_many(self, batch: Sequence[Submission]) -> list[SubmitOutcome]:
        f = self.faults
        if f.down:
            raise SmscUnavailable("simulated SMSC is down")
        refused = {s.client_ref for s in batch if s.recipient in f.fail_recipients
                   or (f.failure_rate > 0 and self._rng.random() < f.failure_rate)}
        accepted = [s for s in batch if s.client_ref not in refused]
        ids = await self._accept(accepted) if accepted else {}
        if f.latency_s:
            # After accepting: a slow acknowledgement is the window in which a crashed
            # submitter does not know the SMSC already has the message.
            await asyncio.sleep(f.latency_s)
        return [
            SubmitOutcome(s.client_ref, None, "simulated SMSC refused the message")
            if s.client_ref in refused else SubmitOutcome(s.client_ref, ids[s.client_ref])
            for s in batch
        ]

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def accept(self, batch: Sequence[Submission]) -> dict[str, str]:
        """Store what arrived (over SMPP: a whole message once its segments are in), once per
        client reference: client_ref -> the SMSC's message id (the first one, if resubmitted)."""
        return await self._accept(batch)

    async def _accept(self, batch: Sequence[Submission]) -> dict[str, str]:
        at = self._clock.now()
        async with self._engine.begin() as conn:
            rows = await conn.execute(_ACCEPT, {
                "at": at, "due": at + timedelta(seconds=self.faults.receipt_delay_s),
                "ids": [f"smsc-{new_hex(20)}" for _ in batch],
                "refs": [s.client_ref for s in batch], "recipients": [s.recipient for s in batch],
                "texts": [s.text for s in batch], "segments": [s.segments for s in batch],
            })
            return {r.client_ref: r.smsc_message_id for r in rows}

    async def take_receipts(self, conn: AsyncConnection, limit: int = 1000) -> list[Receipt]:
        """The receipts now due, marked sent in the caller's transaction (so they are applied
        with them or not at all). A receipt is dated when the phone got the message."""
        rows = await conn.execute(_TAKE_RECEIPTS, {
            "at": self._clock.now(), "limit": limit,
            "undeliverable": self.faults.undeliverable_recipients})
        return [Receipt(r.smsc_message_id, r.receipt_status, r.receipt_due_at,
                        None if r.receipt_status == "delivered" else "UNDELIV")
                for r in rows]
