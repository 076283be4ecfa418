"""The industry gateway's CMPP 2.0 server: what an enterprise's MAS server (企业信息机) logs in
to and submits through. A CMPP_SUBMIT is judged by the same code as `POST /v1/gateway/submit`
(`handlers.judge_submit`: the block check and the record in one statement).

Per connection: CONNECT first (within the login timeout), then SUBMIT / ACTIVE_TEST /
DELIVER_RESP / TERMINATE. Bad bytes end the connection (or, for a SUBMIT whose header was
sound, answer Result 1); nothing a peer sends changes state before it is logged in and judged."""

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from common.clock import BUSINESS_TZ
from common.cmpp.codec import (
    ActiveTest,
    ActiveTestResp,
    CmppError,
    Command,
    Connect,
    ConnectResp,
    ConnectStatus,
    Deliver,
    DeliverResp,
    Pdu,
    StatusReport,
    Submit,
    SubmitResp,
    SubmitResult,
    Terminate,
    TerminateResp,
    authenticator_ismg,
    decode_body,
    encode,
    msg_id,
)
from common.cmpp.stream import PeerClosed, read_frame

from ..domain.cmpp import CmppAccount, RateBucket, check_submit, judge_connect
from ..service_layer import handlers
from ..service_layer.context import GatewayContext

log = logging.getLogger(__name__)
# What ends a connection quietly: the peer's doing, not ours.
PEER_FAULTS = (CmppError, PeerClosed, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class CmppConfig:
    window: int = 16  # unacknowledged submits per connection
    login_timeout_s: float = 10.0  # from TCP accept to CMPP_CONNECT
    idle_timeout_s: float = 180.0  # no PDU for this long: the peer is gone (3 × 60 s tests)
    pdu_timeout_s: float = 10.0  # the rest of a started PDU; a write to a peer not reading
    gateway_code: int = 1  # the 22-bit ISMG code inside Msg_Id


class CmppGateway:
    """The listener and what its sessions share: open connections and the message-rate
    buckets per enterprise (per process: several gateway processes each bound them)."""

    def __init__(self, ctx: GatewayContext, config: CmppConfig) -> None:
        self.ctx, self.config = ctx, config
        self.connections: dict[str, int] = {}
        self._buckets: dict[str, RateBucket] = {}
        self._msg_seq = itertools.count()
        self._sessions: set[asyncio.Task[None]] = set()
        self.port: int | None = None

    def bucket(self, account: CmppAccount) -> RateBucket:
        found = self._buckets.get(account.source_addr)
        if found is None or found.rate != account.max_rate_per_s:
            found = RateBucket(account.max_rate_per_s, time.monotonic())
            self._buckets[account.source_addr] = found
        return found

    def next_msg_id(self) -> int:
        return msg_id(datetime.now(BUSINESS_TZ), self.config.gateway_code, next(self._msg_seq))

    async def serve(self, stop: asyncio.Event, host: str, port: int,
                    ready: asyncio.Event | None = None) -> None:
        server = await asyncio.start_server(self._accept, host, port)
        self.port = server.sockets[0].getsockname()[1]
        log.info("CMPP 2.0 server listening", extra={"host": host, "port": self.port})
        if ready is not None:
            ready.set()
        async with server:
            await stop.wait()
            server.close()
            for task in list(self._sessions):
                task.cancel()
            await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await Session(self, reader, writer).run()
        except PEER_FAULTS as exc:
            log.info("CMPP connection closed: %s", exc or type(exc).__name__)
        except Exception:  # a bug of ours: this connection ends, the server goes on
            log.exception("CMPP session failed")
        finally:
            self._sessions.discard(task)
            writer.close()


class Session:
    def __init__(self, gateway: CmppGateway, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.gw, self.cfg = gateway, gateway.config
        self.reader, self.writer = reader, writer
        self._lock = asyncio.Lock()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._seq = itertools.count(1)
        self.account: CmppAccount | None = None

    async def send(self, pdu: Pdu, seq: int) -> None:
        async with self._lock:
            self.writer.write(encode(pdu, seq))
            try:
                async with asyncio.timeout(self.cfg.pdu_timeout_s):  # no task per PDU
                    await self.writer.drain()
            except TimeoutError:
                self.writer.close()  # a peer that does not read: the reader loop ends too
                raise

    async def run(self) -> None:
        account = await self._login()
        if account is None:
            return
        source = account.source_addr
        try:
            await self._serve(account)
        finally:
            self.gw.connections[source] -= 1
            for task in self._in_flight.values():
                task.cancel()

    async def _login(self) -> CmppAccount | None:
        header, body = await read_frame(self.reader, self.cfg.login_timeout_s,
                                        self.cfg.pdu_timeout_s)
        if header.command_id != Command.CONNECT:
            raise CmppError(f"0x{header.command_id:08x} before CMPP_CONNECT")
        try:
            pdu = decode_body(header.command_id, body)
        except CmppError:
            await self.send(ConnectResp(ConnectStatus.BAD_STRUCTURE), header.sequence_id)
            raise
        assert isinstance(pdu, Connect)
        account = await handlers.load_cmpp_account(self.gw.ctx, pdu.source_addr)
        status = judge_connect(pdu, account,
                               self.gw.connections.get(pdu.source_addr, 0))
        auth = (authenticator_ismg(status, pdu.authenticator, account.shared_secret)
                if account is not None and status is ConnectStatus.OK else b"\0" * 16)
        if account is not None and status is ConnectStatus.OK:
            # counted before the answer is awaited: two logins at once cannot both pass
            self.gw.connections[account.source_addr] = self.gw.connections.get(
                account.source_addr, 0) + 1
        try:
            await self.send(ConnectResp(status, auth), header.sequence_id)
        except BaseException:
            if account is not None and status is ConnectStatus.OK:
                self.gw.connections[account.source_addr] -= 1
            raise
        if status is not ConnectStatus.OK:
            log.info("CMPP login refused", extra={"source_addr": pdu.source_addr,
                                                  "status": int(status)})
            return None
        self.account = account
        return account

    async def _serve(self, account: CmppAccount) -> None:
        while True:
            header, body = await read_frame(self.reader, self.cfg.idle_timeout_s,
                                            self.cfg.pdu_timeout_s)
            try:
                pdu = decode_body(header.command_id, body)
            except CmppError:
                if header.command_id != Command.SUBMIT:
                    raise
                await self.send(SubmitResp(0, SubmitResult.BAD_STRUCTURE), header.sequence_id)
                continue
            if isinstance(pdu, Submit):
                await self._submit(account, header.sequence_id, pdu)
            elif isinstance(pdu, ActiveTest):
                await self.send(ActiveTestResp(), header.sequence_id)
            elif isinstance(pdu, Terminate):
                await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
                await self.send(TerminateResp(), header.sequence_id)
                return
            elif not isinstance(pdu, ActiveTestResp | DeliverResp | TerminateResp):
                raise CmppError(f"{type(pdu).__name__} is not for the gateway after login")

    async def _submit(self, account: CmppAccount, seq: int, pdu: Submit) -> None:
        result = check_submit(pdu)
        if result is SubmitResult.OK and seq in self._in_flight:
            result = SubmitResult.DUPLICATE_SEQUENCE
        if result is SubmitResult.OK and len(self._in_flight) >= self.cfg.window:
            result = SubmitResult.FLOW_CONTROL
        if result is SubmitResult.OK and not self.gw.bucket(account).take(
                time.monotonic(), len(pdu.dest_terminal_ids)):
            result = SubmitResult.FLOW_CONTROL
        if result is not SubmitResult.OK:
            await self.send(SubmitResp(0, result), seq)
            return
        task = asyncio.create_task(self._judge(account, seq, pdu))
        self._in_flight[seq] = task
        task.add_done_callback(lambda _: self._in_flight.pop(seq, None))

    async def _judge(self, account: CmppAccount, seq: int, pdu: Submit) -> None:
        mid = self.gw.next_msg_id()
        try:
            accepted = await handlers.judge_submit(
                self.gw.ctx, account.product_id, str(mid), channel="cmpp",
                source_addr=account.source_addr, recipients=len(pdu.dest_terminal_ids))
        except Exception:
            log.exception("CMPP submit could not be judged")
            await self._reply(SubmitResp(mid, SubmitResult.UNAVAILABLE), seq)
            return
        result = SubmitResult.OK if accepted else SubmitResult.PRODUCT_BLOCKED
        await self._reply(SubmitResp(mid, result), seq)
        if accepted and pdu.registered_delivery == 1:
            await self._report(mid, pdu)

    async def _reply(self, pdu: Pdu, seq: int) -> None:
        with contextlib.suppress(*PEER_FAULTS):
            await self.send(pdu, seq)

    async def _report(self, mid: int, pdu: Submit) -> None:
        """The simulated gateway delivers at once: one DELIVRD status report per number."""
        stamp = datetime.now(BUSINESS_TZ).strftime("%y%m%d%H%M")
        for dest in pdu.dest_terminal_ids:
            report = StatusReport(mid, "DELIVRD", stamp, stamp, dest)
            await self._reply(Deliver(mid, pdu.src_id, dest, report.encode(),
                                      registered_delivery=1, service_id=pdu.service_id),
                              next(self._seq))
