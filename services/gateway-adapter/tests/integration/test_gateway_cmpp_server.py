"""The CMPP 2.0 server in this process against the real PostgreSQL: logins (right, wrong,
unknown, too many), submits judged by the gateway's block and recorded like HTTP submits,
status reports, the window and the rate bound, and bad input on the wire — garbage, truncated,
oversized, silent — closing the connection without changing anything."""

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.cmpp import codec as c
from common.cmpp.client import CmppClient, ConnectRefused
from gateway_adapter.domain.cmpp import CmppAccount
from gateway_adapter.entrypoints.cmpp_server import CmppConfig, CmppGateway
from gateway_adapter.service_layer import handlers
from gateway_adapter.service_layer.context import GatewayContext

pytestmark = [pytest.mark.integration]
SECRET = "Sh@red-1"
CONFIG = CmppConfig(window=4, login_timeout_s=1.0, idle_timeout_s=1.5, pdu_timeout_s=1.0)


class Running:
    def __init__(self, gateway: CmppGateway, source: str, product: str) -> None:
        self.gateway, self.source, self.product = gateway, source, product

    @property
    def port(self) -> int:
        assert self.gateway.port is not None
        return self.gateway.port

    async def login(self, secret: str = SECRET, source: str | None = None) -> CmppClient:
        return await CmppClient.connect("127.0.0.1", self.port, source or self.source, secret,
                                        timeout=5)

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def serve(ctx: GatewayContext, config: CmppConfig, uid: str, rate: float = 1000,
                max_connections: int = 2) -> AsyncIterator[Running]:
    source = uid[:6]
    product = f"cmpp{uid}"
    await handlers.save_cmpp_account(ctx, CmppAccount(source, SECRET, product,
                                                      max_connections, rate))
    gateway = CmppGateway(ctx, config)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(gateway.serve(stop, "127.0.0.1", 0, ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield Running(gateway, source, product)
    finally:
        stop.set()
        await task


@pytest.fixture
async def running(in_process: GatewayContext, uid: str) -> AsyncIterator[Running]:
    async for r in serve(in_process, CONFIG, uid):
        yield r


async def block(db: AsyncEngine, product: str, blocked: bool) -> None:
    now = datetime.now(UTC)
    async with db.begin() as conn:
        await conn.execute(text("""
            INSERT INTO gateway.chain_products (product_id, cpno, family, vendor, last_sequence,
                boss_status, boss_updated_at, gateway_blocked, gateway_updated_at)
            VALUES (:p, 'CP' || :p, 'MAS', 'huawei', 1, 'active', :now, :b, :now)
            ON CONFLICT (product_id) DO UPDATE SET gateway_blocked = :b"""),
            {"p": product, "b": blocked, "now": now})


async def recorded(db: AsyncEngine, product: str) -> list[tuple[str, bool, int]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT channel, accepted, recipients FROM gateway.submits WHERE product_id = :p "
            "ORDER BY submit_id"), {"p": product})
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def closed(reader: asyncio.StreamReader, within: float = 5) -> bool:
    """True if the server closed the connection (EOF) within the time."""
    try:
        while await asyncio.wait_for(reader.read(4096), within):
            pass
    except (ConnectionError, TimeoutError):
        return False
    return True


async def test_submit_accepted_while_open_refused_while_blocked(
    running: Running, db: AsyncEngine,
) -> None:
    client = await running.login()
    try:
        ok = await client.submit(["13800138000", "13900139000"], "会议通知",
                                 src_id="10657001", registered_delivery=1)
        assert [r.result for r in ok] == [0] and ok[0].msg_id != 0
        reports = [await asyncio.wait_for(client.reports.get(), 5) for _ in range(2)]
        assert {r.dest_terminal_id for r in reports} == {"13800138000", "13900139000"}
        assert {(r.msg_id, r.stat) for r in reports} == {(ok[0].msg_id, "DELIVRD")}

        await block(db, running.product, True)
        refused = await client.submit(["13800138000"], "会议通知", registered_delivery=1)
        assert [r.result for r in refused] == [c.SubmitResult.PRODUCT_BLOCKED]
        await block(db, running.product, False)
        long = await client.submit(["13800138000"], "长" * 100)  # two segments
        assert [r.result for r in long] == [0, 0]
        await client.active_test()
    finally:
        await client.terminate()
    assert client.closed.is_set()
    assert await recorded(db, running.product) == [
        ("cmpp", True, 2), ("cmpp", False, 1), ("cmpp", True, 1), ("cmpp", True, 1)]
    assert client.reports.empty()  # no report for the refused one


async def test_http_and_cmpp_submits_share_the_judgement(
    running: Running, in_process: GatewayContext, db: AsyncEngine,
) -> None:
    await block(db, running.product, True)
    with pytest.raises(handlers.ProductBlocked):
        await handlers.submit(in_process, running.product)
    client = await running.login()
    try:
        assert (await client.submit(["13800138000"], "x"))[0].result == 9
    finally:
        await client.terminate()
    assert await recorded(db, running.product) == [("http", False, 1), ("cmpp", False, 1)]


async def test_concurrent_submits_judged_together_each_get_their_own_answer(
    in_process: GatewayContext, db: AsyncEngine, uid: str,
) -> None:
    """Group commit: 200 submits at once for 4 products, two of them blocked, go in a few
    statements; every caller gets its own product's answer and every submit is recorded once,
    in the order it arrived."""
    products = [f"grp{uid}{k}" for k in range(4)]
    for k, product in enumerate(products):
        await block(db, product, k % 2 == 1)
    calls = [(products[n % 4], f"g{uid}-{n}") for n in range(200)]
    answers = await asyncio.gather(*(
        handlers.judge_submit(in_process, p, mid, channel="cmpp", recipients=1 + n % 3)
        for n, (p, mid) in enumerate(calls)))
    assert answers == [n % 2 == 0 for n in range(200)]
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT message_id, product_id, accepted, recipients FROM gateway.submits "
            "WHERE product_id = ANY(:p) ORDER BY submit_id"), {"p": products})).all()
    assert [tuple(r) for r in rows] == [
        (mid, p, n % 2 == 0, 1 + n % 3) for n, (p, mid) in enumerate(calls)]


async def test_a_failed_statement_fails_every_waiting_submit_and_the_next_ones_go_on(
    in_process: GatewayContext, db: AsyncEngine, uid: str,
) -> None:
    """A submit the database refuses (a NUL byte in text) fails the submits of its group,
    each with the error (the CMPP server answers them 'unavailable'), and recording nothing;
    the judge keeps working for the submits after it."""
    bad = handlers.judge_submit(in_process, f"bad{uid}\x00", f"b{uid}", channel="cmpp")
    good = handlers.judge_submit(in_process, f"ok{uid}", f"o{uid}", channel="cmpp")
    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)
    assert await handlers.judge_submit(in_process, f"ok{uid}", f"o2{uid}", channel="cmpp")
    assert await recorded(db, f"ok{uid}") == [("cmpp", True, 1)]


async def test_logins_refused_without_changing_anything(running: Running,
                                                         db: AsyncEngine) -> None:
    with pytest.raises(ConnectRefused) as wrong:
        await running.login("wrong")
    assert wrong.value.status == c.ConnectStatus.AUTH_FAILED
    with pytest.raises(ConnectRefused) as unknown:
        await running.login(source="zz9zz9")
    assert unknown.value.status == c.ConnectStatus.BAD_SOURCE_ADDR
    assert running.gateway.connections.get(running.source, 0) == 0
    first, second = await running.login(), await running.login()
    with pytest.raises(ConnectRefused) as third:
        await running.login()
    assert third.value.status == c.ConnectStatus.TOO_MANY_CONNECTIONS
    await first.terminate()
    await asyncio.sleep(0.2)
    again = await running.login()  # a place freed
    for client in (second, again):
        await client.terminate()
    assert await recorded(db, running.product) == []


async def test_connect_response_authenticator_and_version(running: Running) -> None:
    reader, writer = await running.raw()
    ts = 1203040506
    auth = c.authenticator_source(running.source, SECRET, ts)
    writer.write(c.encode(c.Connect(running.source, auth, ts, version=0x30), 1))
    header = c.decode_header(await reader.readexactly(12))
    _, resp = c.decode(c.HEADER.pack(header.total_length, header.command_id,
                                      header.sequence_id)
                       + await reader.readexactly(header.total_length - 12))
    assert resp == c.ConnectResp(c.ConnectStatus.VERSION_TOO_HIGH)
    assert await closed(reader)
    writer.close()


async def test_window_and_rate_bound_answer_flow_control(
    in_process: GatewayContext, uid: str,
) -> None:
    async for run in serve(in_process, replace(CONFIG, window=1), uid):
        reader, writer = await run.raw()
        client = await run.login()
        await client.terminate()
        # pipelined submits without waiting: the window holds one at a time
        ts = 1
        writer.write(c.encode(c.Connect(run.source, c.authenticator_source(
            run.source, SECRET, ts), ts), 1))
        writer.write(b"".join(c.encode(c.Submit(("13800138000",), b"x", c.MsgFmt.ASCII), s)
                              for s in range(2, 7)))
        results = []
        for _ in range(6):
            head = c.decode_header(await asyncio.wait_for(reader.readexactly(12), 5))
            body = await reader.readexactly(head.total_length - 12)
            pdu = c.decode_body(head.command_id, body)
            if isinstance(pdu, c.SubmitResp):
                results.append(pdu.result)
        assert sorted(results)[0] == 0 and c.SubmitResult.FLOW_CONTROL in results
        writer.close()
    async for run in serve(in_process, CONFIG, uid + "r", rate=1):
        client = await run.login()
        try:
            got = [(await client.submit(["13800138000"], "x"))[0].result for _ in range(3)]
            assert got[0] == 0 and got[1:] == [8, 8]
        finally:
            await client.terminate()


@pytest.mark.parametrize("garbage", [
    b"\xff" * 64,                                   # announces 4 GB
    struct.pack(">III", 8, 1, 1),                   # shorter than its own header
    struct.pack(">III", 12, 0x00000006, 1),         # CMPP_QUERY: not supported, before login
    struct.pack(">III", 12, 4, 1),                  # SUBMIT before CONNECT
    struct.pack(">III", 30, 1, 1) + b"\0" * 18,     # CONNECT with a short body
])
async def test_bad_bytes_close_the_connection(running: Running, db: AsyncEngine,
                                              garbage: bytes) -> None:
    reader, writer = await running.raw()
    writer.write(garbage)
    assert await closed(reader)
    writer.close()
    assert running.gateway.connections.get(running.source, 0) == 0
    # the server goes on serving
    client = await running.login()
    await client.terminate()
    assert await recorded(db, running.product) == []


async def test_bad_pdus_after_login(running: Running, db: AsyncEngine) -> None:
    client = await running.login()
    try:
        too_long = await client.submit_pdu(c.Submit(("13800138000",), b"x" * 141))
        assert too_long.result == c.SubmitResult.TOO_LONG
        bad_fmt = await client.submit_pdu(c.Submit(("13800138000",), b"x", msg_fmt=3))
        assert bad_fmt.result == c.SubmitResult.BAD_STRUCTURE
    finally:
        await client.terminate()
    reader, writer = await running.raw()
    ts = 5
    writer.write(c.encode(c.Connect(running.source, c.authenticator_source(
        running.source, SECRET, ts), ts), 1))
    await reader.readexactly(30)
    good = c.encode(c.Submit(("13800138000",), b"x"), 2)
    bad = struct.pack(">III", len(good) - 5, 4, 2) + good[12:-5]  # body cut inside Reserve
    writer.write(bad)
    head = c.decode_header(await asyncio.wait_for(reader.readexactly(12), 5))
    assert c.decode_body(head.command_id, await reader.readexactly(head.total_length - 12)) \
        == c.SubmitResp(0, c.SubmitResult.BAD_STRUCTURE)
    writer.write(struct.pack(">III", c.MAX_PDU_LEN + 1, 4, 3))  # oversized: closed
    assert await closed(reader)
    writer.close()
    assert await recorded(db, running.product) == []


async def test_silent_and_slow_peers_time_out(running: Running) -> None:
    reader, writer = await running.raw()
    assert await closed(reader, within=CONFIG.login_timeout_s + 3)  # never logs in
    writer.close()
    reader, writer = await running.raw()
    writer.write(c.encode(c.ActiveTest(), 1)[:5])  # half a header, then nothing
    assert await closed(reader, within=CONFIG.pdu_timeout_s + 3)
    writer.close()
    client = await running.login()
    await asyncio.wait_for(client.closed.wait(), CONFIG.idle_timeout_s + 3)  # idle: closed
    with contextlib.suppress(ConnectionError):
        await client.close()
    assert running.gateway.connections.get(running.source, 0) == 0
