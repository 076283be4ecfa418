"""CMPP PDUs over an asyncio stream: whole PDUs in, whole PDUs out, with time limits so a
slow or silent peer cannot hold a reader."""

import asyncio

from .codec import HEADER_LEN, MAX_PDU_LEN, Header, Truncated, decode_header


class PeerClosed(ConnectionError):
    """The peer closed the connection (between PDUs or inside one)."""


async def read_frame(
    reader: asyncio.StreamReader, idle_timeout: float, body_timeout: float,
    max_len: int = MAX_PDU_LEN,
) -> tuple[Header, bytes]:
    """The next PDU's header and body. `idle_timeout` bounds the wait for a PDU to start,
    `body_timeout` the rest of it once it started (TimeoutError either way). A header
    announcing a PDU above `max_len` raises Oversized before its body is read.

    `asyncio.timeout` rather than `wait_for`: wait_for wraps each read in a task of its own,
    which was most of a submit's CPU at thousands of PDUs a second."""
    try:
        async with asyncio.timeout(idle_timeout):
            first = await reader.readexactly(1)
    except asyncio.IncompleteReadError as exc:
        raise PeerClosed("the peer closed the connection") from exc
    try:
        async with asyncio.timeout(body_timeout):
            rest = await reader.readexactly(HEADER_LEN - 1)
            header = decode_header(first + rest, max_len)
            body = await reader.readexactly(header.total_length - HEADER_LEN)
    except asyncio.IncompleteReadError as exc:
        raise Truncated("the peer closed inside a PDU") from exc
    return header, body
