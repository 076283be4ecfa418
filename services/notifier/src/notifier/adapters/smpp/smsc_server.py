"""The simulated SMSC as an SMPP 3.4 server: what the notifier's SMPP provider binds to in
tests and demos (a real SMSC in production, by configuration only). Its state is the
simulated SMSC's (`notifier.smsc_received`, `SimulatedSmsc`), its faults too (`down`,
`failure_rate`, `fail_recipients`, `undeliverable_recipients`, `receipt_delay_s`), plus a
submit rate per session above which it answers ESME_RTHROTTLED.

A concatenated message (UDH, IEI 0x00 or 0x08) is stored once all its segments are in; each
segment gets its own submit_sm_resp, the completing one the stored message's id. Delivery
receipts leave as deliver_sm (esm_class 0x04, the Appendix B text and receipted_message_id)
to a bound transceiver or receiver; a receipt is marked sent only in the transaction that
saw the ESME's deliver_sm_resp, so one not acknowledged goes again."""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from common.clock import BUSINESS_TZ
from common.ids import new_hex
from common.ucs2 import split_udh

from ..providers import Receipt, Submission
from ..smsc import SimulatedSmsc
from .codec import (
    DATA_CODING_UCS2,
    ESM_DELIVERY_RECEIPT,
    ESM_UDHI,
    TLV_CLIENT_REF,
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
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
from .session import PeerClosed, Session

log = logging.getLogger(__name__)
BIND_RESP = {Command.BIND_TRANSMITTER: Command.BIND_TRANSMITTER_RESP,
             Command.BIND_TRANSCEIVER: Command.BIND_TRANSCEIVER_RESP,
             Command.BIND_RECEIVER: Command.BIND_RECEIVER_RESP}


@dataclass(frozen=True)
class SmscServerConfig:
    system_id: str = "notifier"
    password: str = "secret"
    max_rate_per_s: float = 0.0  # submit_sm per second per session; 0: no limit
    bind_timeout_s: float = 10.0
    idle_timeout_s: float = 120.0  # no PDU (enquire_link included) for this long: closed
    pdu_timeout_s: float = 10.0
    receipt_poll_s: float = 0.1


class Throttle:
    """submit_sm per second per session, a burst of one second's worth; 0 = no limit."""

    def __init__(self, rate: float) -> None:
        self.rate, self._tokens, self._at = rate, max(rate, 1.0), time.monotonic()

    def take(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self._tokens = min(max(self.rate, 1.0), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class SmscServer:
    def __init__(self, smsc: SimulatedSmsc, config: SmscServerConfig) -> None:
        self.smsc, self.cfg = smsc, config
        self.receivers: list[Session] = []  # bound transceivers and receivers
        self._parts: dict[str, dict[int, str]] = {}
        self.port: int | None = None
        self.throttled = 0  # submit_sm answered ESME_RTHROTTLED

    async def serve(self, stop: asyncio.Event, host: str, port: int,
                    ready: asyncio.Event | None = None) -> None:
        server = await asyncio.start_server(self._accept, host, port)
        self.port = server.sockets[0].getsockname()[1]
        log.info("simulated SMSC listening for SMPP", extra={"port": self.port})
        if ready is not None:
            ready.set()
        receipts = asyncio.create_task(self._send_receipts(stop))
        async with server:
            await stop.wait()
            server.close()
            for s in list(self.receivers):
                s.close()
        await receipts

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(reader, writer, self.cfg.pdu_timeout_s, self.cfg.idle_timeout_s)
        try:
            command = await self._bind(session)
            if command is None:
                return
            bucket = Throttle(self.cfg.max_rate_per_s)
            if command is not Command.BIND_TRANSMITTER:
                self.receivers.append(session)
            await session.run(lambda h, p: self._request(session, command, bucket, h, p))
        except (SmppError, PeerClosed, ConnectionError, TimeoutError) as exc:
            log.info("SMPP session closed: %s", exc or type(exc).__name__)
        except Exception:
            log.exception("SMPP session failed")
        finally:
            with contextlib.suppress(ValueError):
                self.receivers.remove(session)
            session.close()

    async def _bind(self, session: Session) -> Command | None:
        session.idle_timeout = self.cfg.bind_timeout_s
        header, pdu = await session.read_one()
        session.idle_timeout = self.cfg.idle_timeout_s
        if not isinstance(pdu, Bind):
            await session.send(Empty(Command.GENERIC_NACK), header.sequence, Status.RINVBNDSTS)
            return None
        status = (Status.RBINDFAIL if self.smsc.faults.down
                  else Status.RINVSYSID if pdu.system_id != self.cfg.system_id
                  else Status.RINVPASWD if pdu.password != self.cfg.password
                  else Status.ROK)
        await session.send(BindResp(BIND_RESP[pdu.command], "SIMSMSC"), header.sequence,
                           status)
        return pdu.command if status == Status.ROK else None

    async def _request(self, session: Session, bound: Command, bucket: Throttle,
                       header: Header, pdu: Pdu) -> None:
        seq = header.sequence
        if isinstance(pdu, ShortMessage) and pdu.command is Command.SUBMIT_SM:
            if bound is Command.BIND_RECEIVER:
                await session.send(MessageIdResp(Command.SUBMIT_SM_RESP), seq,
                                   Status.RINVBNDSTS)
                return
            status, message_id = await self._submit(pdu, bucket)
            await session.send(MessageIdResp(Command.SUBMIT_SM_RESP, message_id), seq, status)
        elif isinstance(pdu, Empty) and pdu.command is Command.ENQUIRE_LINK:
            await session.send(Empty(Command.ENQUIRE_LINK_RESP), seq)
        elif isinstance(pdu, Empty) and pdu.command is Command.UNBIND:
            await session.send(Empty(Command.UNBIND_RESP), seq)
            session.close()
        elif not header.command_id & 0x80000000:  # a request we do not serve
            await session.send(Empty(Command.GENERIC_NACK), seq, Status.RINVCMDID)

    async def _submit(self, pdu: ShortMessage, bucket: Throttle) -> tuple[int, str]:
        f = self.smsc.faults
        if f.down:
            return Status.RSYSERR, ""
        if not bucket.take(time.monotonic()):
            self.throttled += 1
            return Status.RTHROTTLED, ""
        try:
            ref, number, total, text = _read(pdu)
        except (SmppError, ValueError):
            return Status.RINVMSGLEN, ""
        if pdu.destination_addr in f.fail_recipients:
            return Status.RSUBMITFAIL, ""
        parts = self._parts.setdefault(ref, {})
        parts[number] = text
        if len(parts) < total:
            return Status.ROK, f"seg-{new_hex(16)}"
        del self._parts[ref]
        whole = "".join(parts[i] for i in sorted(parts))
        ids = await self.smsc.accept([Submission(ref, pdu.destination_addr, whole, total)])
        return Status.ROK, ids[ref]

    async def _send_receipts(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            sent = 0
            if self.receivers:
                try:
                    sent = await self._receipts_round(self.receivers[0])
                except (ConnectionError, TimeoutError, SmppError) as exc:
                    log.info("receipts not acknowledged, kept for the next round: %s", exc)
                except Exception:
                    log.exception("receipt round failed")
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.cfg.receipt_poll_s)

    async def _receipts_round(self, session: Session) -> int:
        async with self.smsc.engine.begin() as conn:
            receipts = await self.smsc.take_receipts(conn, 200)
            for r in receipts:
                resp = await session.request(_deliver(r))
                if resp.status != Status.ROK:
                    raise SmppError(f"deliver_sm_resp status 0x{resp.status:02x}")
        return len(receipts)


def _read(pdu: ShortMessage) -> tuple[str, int, int, str]:
    """(message reference, segment number, total, text) of a submit_sm."""
    data, ref_part, number, total = pdu.short_message, "", 1, 1
    if pdu.esm_class & ESM_UDHI:
        udh, data = split_udh(pdu.short_message)
        number, total, ref_part = _concat(udh)
    text = data.decode("utf-16-be") if pdu.data_coding == DATA_CODING_UCS2 \
        else data.decode("latin-1")
    client = pdu.tlv(TLV_CLIENT_REF)
    if client is not None:
        ref = client.decode("ascii").rsplit(":", 1)[0]
    elif total > 1:
        ref = f"{pdu.source_addr}>{pdu.destination_addr}#{ref_part}/{total}"
    else:
        ref = f"smpp-{new_hex()}"  # no reference: no duplicate detection
    return ref, number, total, text


def _concat(udh: bytes) -> tuple[int, int, str]:
    """(number, total, reference) from a concatenation IE (8- or 16-bit reference)."""
    at = 1
    while at + 2 <= len(udh):
        iei, length = udh[at], udh[at + 1]
        value = udh[at + 2:at + 2 + length]
        if iei == 0x00 and length == 3:
            ref, total, number = value[0], value[1], value[2]
            break
        if iei == 0x08 and length == 4:
            ref, total, number = int.from_bytes(value[:2], "big"), value[2], value[3]
            break
        at += 2 + length
    else:
        raise SmppError("a UDH without a concatenation element")
    if not 1 <= number <= total:
        raise SmppError(f"segment {number} of {total}")
    return number, total, str(ref)


def _deliver(r: Receipt) -> ShortMessage:
    stamp = r.at.astimezone(BUSINESS_TZ).strftime("%y%m%d%H%M")
    stat = "DELIVRD" if r.status == "delivered" else "UNDELIV"
    text = DeliveryReceipt(r.provider_message_id, stat, stamp, stamp).text()
    state = b"\x02" if stat == "DELIVRD" else b"\x05"  # message_state DELIVERED/UNDELIVERABLE
    return ShortMessage(Command.DELIVER_SM, "", "", text, esm_class=ESM_DELIVERY_RECEIPT,
                        tlvs=((TLV_RECEIPTED_MESSAGE_ID, r.provider_message_id.encode() + b"\0"),
                              (TLV_MESSAGE_STATE, state)))
