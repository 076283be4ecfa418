"""One SMPP connection, either side: whole PDUs in and out with time limits, requests matched
to their responses by sequence_number, and everything else handed to the owner."""

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable

from .codec import (
    HEADER_LEN,
    MAX_PDU_LEN,
    Header,
    Pdu,
    SmppError,
    Truncated,
    decode_body,
    decode_header,
    encode,
)


class PeerClosed(ConnectionError):
    pass


class Response:
    def __init__(self, header: Header, pdu: Pdu) -> None:
        self.header, self.pdu = header, pdu

    @property
    def status(self) -> int:
        return self.header.status


async def read_frame(reader: asyncio.StreamReader, idle_timeout: float, pdu_timeout: float,
                     max_len: int = MAX_PDU_LEN) -> tuple[Header, bytes]:
    try:
        first = await asyncio.wait_for(reader.readexactly(1), idle_timeout)
    except asyncio.IncompleteReadError as exc:
        raise PeerClosed("the peer closed the connection") from exc
    try:
        rest = await asyncio.wait_for(reader.readexactly(HEADER_LEN - 1), pdu_timeout)
        header = decode_header(first + rest, max_len)
        body = await asyncio.wait_for(reader.readexactly(header.length - HEADER_LEN),
                                      pdu_timeout)
    except asyncio.IncompleteReadError as exc:
        raise Truncated("the peer closed inside a PDU") from exc
    return header, body


Handler = Callable[[Header, Pdu], Awaitable[None]]


class Session:
    """Requests (`request`) wait for the response with their sequence_number; any other PDU
    goes to `handler` (requests from the peer: deliver_sm, enquire_link, unbind)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float, idle_timeout: float = 3600.0) -> None:
        self.reader, self.writer = reader, writer
        self.timeout, self.idle_timeout = timeout, idle_timeout
        self._seq = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._lock = asyncio.Lock()
        self.closed = asyncio.Event()

    def next_seq(self) -> int:
        return next(self._seq) % 0x7FFFFFFF or next(self._seq)

    async def send(self, pdu: Pdu, seq: int, status: int = 0) -> None:
        async with self._lock:
            self.writer.write(encode(pdu, seq, status))
            await asyncio.wait_for(self.writer.drain(), self.timeout)

    async def request(self, pdu: Pdu) -> Response:
        if self.closed.is_set():
            raise ConnectionError("the SMPP session is closed")
        seq = self.next_seq()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        try:
            await self.send(pdu, seq)
            return await asyncio.wait_for(future, self.timeout)
        finally:
            self._pending.pop(seq, None)

    async def read_one(self) -> tuple[Header, Pdu]:
        header, body = await read_frame(self.reader, self.idle_timeout, self.timeout)
        return header, decode_body(header.command_id, body, header.status)

    async def run(self, handler: Handler) -> None:
        """Read until the peer closes or sends bytes that are not SMPP; then fail whatever
        is still waiting for a response."""
        try:
            while True:
                header, pdu = await self.read_one()
                future = self._pending.get(header.sequence) if header.command_id & 0x80000000 \
                    else None
                if future is not None and not future.done():
                    future.set_result(Response(header, pdu))
                else:
                    await handler(header, pdu)
        except (ConnectionError, SmppError, TimeoutError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(Exception):
            self.writer.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the SMPP session closed"))
