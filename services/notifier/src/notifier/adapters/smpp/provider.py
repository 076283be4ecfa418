"""The notifier's SMS centre over SMPP 3.4: an ESME that binds as a transceiver (receipts
come back on the same connection) or a transmitter, submits UCS-2 (data_coding 8) — a text
over 70 characters as 67-character segments behind a concatenation UDH (esm_class 0x40) —
backs off and retries on ESME_RTHROTTLED, keeps the link alive with enquire_link, reconnects
with backoff, and turns deliver_sm receipts into `Receipt`s for the message log.

The provider's message id of a message is the SMSC's id of its LAST segment, the only one
that asks for a delivery receipt (registered_delivery 1): the phone shows the text once all
segments are in. Every segment carries the message id and its number in a vendor TLV
(TLV_CLIENT_REF), on which the simulated SMSC detects a resubmission."""

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from common.ucs2 import Segment, segments

from ..providers import Receipt, Submission, SubmitOutcome, describe
from .codec import (
    DATA_CODING_UCS2,
    ESM_DELIVERY_RECEIPT,
    ESM_UDHI,
    TLV_CLIENT_REF,
    Bind,
    BindResp,
    Command,
    DeliveryReceipt,
    Empty,
    Header,
    MessageIdResp,
    Pdu,
    ShortMessage,
    SmppError,
    Status,
)
from .session import Session

log = logging.getLogger(__name__)
ReceiptSink = Callable[[list[Receipt]], Awaitable[None]]


@dataclass(frozen=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind: str = "transceiver"  # or transmitter (receipts then come another way)
    source_addr: str = "10086"
    enquire_link_s: float = 30.0
    response_timeout_s: float = 10.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    throttle_backoff_s: float = 0.2  # doubled each time ESME_RTHROTTLED comes back
    throttle_retries: int = 6
    window: int = 10  # submit_sm awaiting their responses at most


def _reference(client_ref: str) -> int:
    return zlib.crc32(client_ref.encode()) & 0xFF


def _receipt(report: DeliveryReceipt) -> Receipt:
    """Dated when it arrives: SMPP's done date has minutes only, and would put a receipt
    that came a second after the submit before it."""
    delivered = report.stat == "DELIVRD"
    return Receipt(report.message_id, "delivered" if delivered else "rejected",
                   datetime.now(UTC), None if delivered else report.stat)


class SmppProvider:
    def __init__(self, config: SmppConfig, on_receipts: ReceiptSink | None = None) -> None:
        self.cfg = config
        self.on_receipts = on_receipts
        self._session: Session | None = None
        self._connecting = asyncio.Lock()
        self._window = asyncio.Semaphore(config.window)
        self._tasks: set[asyncio.Task[None]] = set()
        self.binds = 0  # how many times it bound (reconnects show here)

    # --- the link ---------------------------------------------------------------------------

    async def session(self) -> Session:
        """The bound session, connecting and binding first if there is none."""
        async with self._connecting:
            if self._session is not None and not self._session.closed.is_set():
                return self._session
            self._session = await self._bind()
            return self._session

    async def _bind(self) -> Session:
        c = self.cfg
        reader, writer = await asyncio.wait_for(asyncio.open_connection(c.host, c.port),
                                                c.response_timeout_s)
        session = Session(reader, writer, c.response_timeout_s)
        command = Command.BIND_TRANSCEIVER if c.bind == "transceiver" \
            else Command.BIND_TRANSMITTER
        try:
            seq = session.next_seq()
            await session.send(Bind(command, c.system_id, c.password, c.system_type), seq)
            header, resp = await session.read_one()
            if not isinstance(resp, BindResp) or header.sequence != seq:
                raise SmppError(f"expected a bind response, got {resp!r}")
            if header.status != Status.ROK:
                raise ConnectionError(f"SMPP bind refused: status 0x{header.status:02x}")
        except BaseException:
            session.close()
            raise
        self.binds += 1
        self._spawn(session.run(lambda h, p: self._from_smsc(session, h, p)))
        self._spawn(self._enquire_links(session))
        log.info("SMPP bound", extra={"smsc": f"{c.host}:{c.port}", "bind": c.bind})
        return session

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _enquire_links(self, session: Session) -> None:
        """A link that does not answer enquire_link is dead: close it, the next use binds."""
        while not session.closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.closed.wait(), self.cfg.enquire_link_s)
                return
            try:
                await session.request(Empty(Command.ENQUIRE_LINK))
            except (ConnectionError, TimeoutError):
                session.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a session bound (a transceiver must be, for receipts to come back), with
        backoff between failed attempts; unbind on stop."""
        delay = self.cfg.reconnect_min_s
        while not stop.is_set():
            try:
                session = await self.session()
                delay = self.cfg.reconnect_min_s
                await _first(session.closed.wait(), stop.wait())
            except (OSError, TimeoutError, SmppError) as exc:
                log.warning("SMPP link down: %s", describe(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.cfg.reconnect_max_s)
        await self.aclose()

    async def aclose(self) -> None:
        session = self._session
        if session is not None and not session.closed.is_set():
            with contextlib.suppress(ConnectionError, TimeoutError, SmppError):
                await session.request(Empty(Command.UNBIND))
            session.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _from_smsc(self, session: Session, header: Header, pdu: Pdu) -> None:
        if isinstance(pdu, ShortMessage) and pdu.command is Command.DELIVER_SM:
            status = await self._receipt_in(pdu)
            await session.send(MessageIdResp(Command.DELIVER_SM_RESP), header.sequence, status)
        elif isinstance(pdu, Empty) and pdu.command is Command.ENQUIRE_LINK:
            await session.send(Empty(Command.ENQUIRE_LINK_RESP), header.sequence)
        elif isinstance(pdu, Empty) and pdu.command is Command.UNBIND:
            await session.send(Empty(Command.UNBIND_RESP), header.sequence)
            session.close()
        elif not header.command_id & 0x80000000:
            await session.send(Empty(Command.GENERIC_NACK), header.sequence, Status.RINVCMDID)

    async def _receipt_in(self, pdu: ShortMessage) -> int:
        """Apply a receipt before acknowledging it: if the log cannot take it now, answer
        ESME_RX_T_APPN and the SMSC sends it again (nothing lost)."""
        if not pdu.esm_class & ESM_DELIVERY_RECEIPT:
            return Status.ROK  # a mobile-originated message: not for the notifier
        try:
            receipt = _receipt(DeliveryReceipt.parse(pdu))
        except SmppError as exc:
            log.warning("unreadable delivery receipt: %s", exc)
            return Status.ROK  # it will not read better next time
        if self.on_receipts is None:
            return Status.ROK
        try:
            await self.on_receipts([receipt])
        except Exception:
            log.exception("delivery receipt not applied; the SMSC will resend it")
            return Status.RX_T_APPN
        return Status.ROK

    # --- submitting -------------------------------------------------------------------------

    async def submit_many(self, batch: Sequence[Submission]) -> list[SubmitOutcome]:
        session = await self.session()
        return list(await asyncio.gather(*(self._submit(session, s) for s in batch)))

    async def _submit(self, session: Session, s: Submission) -> SubmitOutcome:
        try:
            parts = segments(s.text, _reference(s.client_ref))
        except ValueError as exc:
            return SubmitOutcome(s.client_ref, None, describe(exc))
        message_id = ""
        for part in parts:
            try:
                message_id = await self._segment(session, s, part)
            except (ConnectionError, TimeoutError, SmppError) as exc:
                return SubmitOutcome(s.client_ref, None, describe(exc))
        return SubmitOutcome(s.client_ref, message_id)

    async def _segment(self, session: Session, s: Submission, part: Segment) -> str:
        pdu = ShortMessage(
            Command.SUBMIT_SM, self.cfg.source_addr, s.recipient, part.user_data,
            esm_class=ESM_UDHI if part.udh else 0, data_coding=DATA_CODING_UCS2,
            registered_delivery=1 if part.number == part.total else 0,
            tlvs=((TLV_CLIENT_REF, f"{s.client_ref}:{part.number}".encode()),))
        backoff = self.cfg.throttle_backoff_s
        for _ in range(self.cfg.throttle_retries + 1):
            async with self._window:
                resp = await session.request(pdu)
            if resp.status == Status.ROK and isinstance(resp.pdu, MessageIdResp):
                return resp.pdu.message_id
            if resp.status != Status.RTHROTTLED:
                raise SmppError(f"submit_sm refused: status 0x{resp.status:02x}", resp.status)
            await asyncio.sleep(backoff)  # the SMSC asks us to slow down
            backoff *= 2
        raise SmppError("submit_sm still throttled after retries", Status.RTHROTTLED)


async def _first(*aws: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
