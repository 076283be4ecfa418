"""A small asyncio CMPP 2.0 client, as a MAS server (企业信息机) talks to the industry gateway:
log in, submit with a window of unacknowledged submits, answer the gateway's ACTIVE_TEST and
DELIVER (status reports are queued on `reports`), terminate. For tests and `creditctl
mas-send`; not a production MAS server (no reconnect, no resubmission)."""

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from datetime import datetime

from ..clock import BUSINESS_TZ
from ..ucs2 import segments
from .codec import (
    VERSION,
    ActiveTest,
    ActiveTestResp,
    CmppError,
    Connect,
    ConnectResp,
    Deliver,
    DeliverResp,
    MsgFmt,
    Pdu,
    StatusReport,
    Submit,
    SubmitResp,
    Terminate,
    TerminateResp,
    authenticator_ismg,
    authenticator_source,
    decode_body,
    encode,
    timestamp,
)
from .stream import read_frame

DEFAULT_WINDOW = 16  # the standard's advice for unacknowledged submits per connection


class ConnectRefused(ConnectionError):
    def __init__(self, status: int) -> None:
        super().__init__(f"CMPP_CONNECT refused, status {status}")
        self.status = status


class CmppClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 window: int, timeout: float) -> None:
        self._reader, self._writer, self._timeout = reader, writer, timeout
        self._window = asyncio.Semaphore(window)
        self._seq = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._ref = itertools.count(1)
        self.reports: asyncio.Queue[StatusReport] = asyncio.Queue()
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, host: str, port: int, source_addr: str, secret: str, *,
                      window: int = DEFAULT_WINDOW, timeout: float = 10.0,
                      now: datetime | None = None) -> "CmppClient":
        """Open a connection and log in; ConnectRefused with the gateway's status if not."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        client = cls(reader, writer, window, timeout)
        try:
            await client._login(source_addr, secret, now or datetime.now(BUSINESS_TZ))
        except BaseException:
            writer.close()
            raise
        client._task = asyncio.create_task(client._read())
        return client

    async def _login(self, source_addr: str, secret: str, now: datetime) -> None:
        ts = timestamp(now)
        auth = authenticator_source(source_addr, secret, ts)
        seq = self._next_seq()
        await self._send(Connect(source_addr, auth, ts), seq)
        header, body = await read_frame(self._reader, self._timeout, self._timeout)
        resp = decode_body(header.command_id, body)
        if not isinstance(resp, ConnectResp) or header.sequence_id != seq:
            raise CmppError(f"expected CMPP_CONNECT_RESP to {seq}, got {resp!r}")
        if resp.status != 0:
            raise ConnectRefused(resp.status)
        if resp.authenticator != authenticator_ismg(0, auth, secret):
            raise CmppError("the gateway's AuthenticatorISMG does not match the shared secret")
        if resp.version > VERSION:
            raise CmppError(f"gateway version 0x{resp.version:02x} above 2.0")

    def _next_seq(self) -> int:
        return next(self._seq) & 0xFFFFFFFF or next(self._seq)

    async def _send(self, pdu: Pdu, seq: int) -> None:
        async with self._write_lock:
            self._writer.write(encode(pdu, seq))
            async with asyncio.timeout(self._timeout):  # no task per PDU, unlike wait_for
                await self._writer.drain()

    async def _request(self, pdu: Pdu) -> Pdu:
        if self.closed.is_set():
            raise ConnectionError("the CMPP connection is closed")
        seq = self._next_seq()
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        try:
            await self._send(pdu, seq)
            async with asyncio.timeout(self._timeout):
                return await future
        finally:
            self._pending.pop(seq, None)

    async def submit_pdu(self, pdu: Submit) -> SubmitResp:
        """One CMPP_SUBMIT, waiting for a place in the window and for its response."""
        async with self._window:
            resp = await self._request(pdu)
        if not isinstance(resp, SubmitResp):
            raise CmppError(f"expected CMPP_SUBMIT_RESP, got {resp!r}")
        return resp

    async def submit(self, dest_terminal_ids: Sequence[str], text: str, *, src_id: str = "",
                     msg_src: str = "", service_id: str = "",
                     registered_delivery: int = 0) -> list[SubmitResp]:
        """A UCS-2 text: one SUBMIT up to 70 characters, else 67-character segments with a
        concatenation UDH (TP_udhi 1, Pk_total/Pk_number), sent in order."""
        parts = segments(text, next(self._ref))
        out = []
        for part in parts:
            out.append(await self.submit_pdu(Submit(
                tuple(dest_terminal_ids), part.user_data, MsgFmt.UCS2, src_id=src_id,
                msg_src=msg_src, service_id=service_id,
                registered_delivery=registered_delivery, pk_total=part.total,
                pk_number=part.number, tp_udhi=1 if part.udh else 0)))
        return out

    async def active_test(self) -> None:
        resp = await self._request(ActiveTest())
        if not isinstance(resp, ActiveTestResp):
            raise CmppError(f"expected CMPP_ACTIVE_TEST_RESP, got {resp!r}")

    async def terminate(self) -> None:
        """CMPP_TERMINATE, its response awaited, then the connection closed."""
        with contextlib.suppress(ConnectionError, TimeoutError, CmppError):
            await self._request(Terminate())
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._finish()

    def _finish(self) -> None:
        self.closed.set()
        self._writer.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the CMPP connection closed"))

    async def _read(self) -> None:
        try:
            while True:
                # The gateway sends ACTIVE_TEST on an idle link: waiting long is normal.
                header, body = await read_frame(self._reader, 3600, self._timeout)
                await self._dispatch(header.sequence_id, decode_body(header.command_id, body))
        except (ConnectionError, CmppError, TimeoutError):
            pass
        finally:
            self._finish()

    async def _dispatch(self, seq: int, pdu: Pdu) -> None:
        if isinstance(pdu, Deliver):
            await self._send(DeliverResp(pdu.msg_id, 0), seq)
            if pdu.registered_delivery == 1:
                with contextlib.suppress(CmppError):
                    self.reports.put_nowait(pdu.status_report())
        elif isinstance(pdu, ActiveTest):
            await self._send(ActiveTestResp(), seq)
        elif isinstance(pdu, Terminate):
            await self._send(TerminateResp(), seq)
            raise ConnectionError("the gateway terminated the connection")
        else:
            future = self._pending.get(seq)
            if future is not None and not future.done():
                future.set_result(pdu)
