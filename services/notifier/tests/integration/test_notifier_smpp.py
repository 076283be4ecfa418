"""The notifier over SMPP 3.4 against the simulated SMSC's SMPP server, both in this process,
real PostgreSQL: the seed's notices leave as UCS-2 submit_sm (a 70-character text in one
message, longer ones in 67-character segments behind a UDH), receipts come back as deliver_sm
and mark the log delivered; throttling, reconnecting, a wrong password, a resubmission, and
bad bytes at the SMSC."""

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.credit_control import CreditState, DecisionType
from common.testing.polling import eventually
from notifier.adapters.providers import Receipt, Submission
from notifier.adapters.smpp.provider import SmppConfig, SmppProvider
from notifier.adapters.smpp.smsc_server import SmscServer, SmscServerConfig
from notifier.adapters.smsc import SimulatedSmsc, SmscFaults
from notifier.service_layer.context import NotifierContext
from notifier.service_layer.receipts import apply_receipts

from .notifier_fixtures import (
    context_for,
    decision,
    drain,
    local,
    log_of,
    receive,
    restored,
    smsc_rows,
    suspended,
)

pytestmark = [pytest.mark.integration]


@dataclass
class Smpp:
    server: SmscServer
    provider: SmppProvider
    config: SmppConfig


@pytest.fixture
async def smpp(db: AsyncEngine, test_year: int, request: pytest.FixtureRequest
               ) -> AsyncIterator[Smpp]:
    rate = getattr(request, "param", 0.0)
    clock = FixedClock(local(test_year + 20, "11-30T10:00"))
    smsc = SimulatedSmsc(db, clock, SmscFaults(receipt_delay_s=0))
    server = SmscServer(smsc, SmscServerConfig("notifier", "pw", max_rate_per_s=rate,
                                               receipt_poll_s=0.05, idle_timeout_s=5))
    stop, ready = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(server.serve(stop, "127.0.0.1", 0, ready))
    await asyncio.wait_for(ready.wait(), 10)
    assert server.port is not None
    config = SmppConfig("127.0.0.1", server.port, "notifier", "pw", enquire_link_s=0.3,
                        response_timeout_s=5, reconnect_min_s=0.1, throttle_backoff_s=0.05)
    provider = SmppProvider(config)
    try:
        yield Smpp(server, provider, config)
    finally:
        await provider.aclose()
        stop.set()
        await serving


def context(db: AsyncEngine, smpp: Smpp, year: int) -> NotifierContext:
    ctx = NotifierContext(db, smpp.provider, FixedClock(local(year, "11-30T10:00")),
                          smsc=smpp.server.smsc, send_backoff_base_s=10.0)

    async def on_receipts(receipts: list[Receipt]) -> None:
        await apply_receipts(ctx, receipts)

    smpp.provider.on_receipts = on_receipts
    return ctx


async def test_seed_notices_over_smpp_segmented_and_receipted(
    db: AsyncEngine, smpp: Smpp, uid: str, test_year: int,
) -> None:
    year = test_year + 20
    ctx = context(db, smpp, year)
    link = asyncio.create_task(smpp.provider.run(stop := asyncio.Event()))
    notice = context_for(uid, year, contacts=("13800000001",))
    # The seed's texts: bill notice, suspension warning, suspension A and B, restore.
    # One after the other, as they happen (together, the later ones would cancel the earlier).
    for event in (decision(notice, DecisionType.BILL_NOTICE),
                  decision(notice, DecisionType.SUSPENSION_WARNING,
                           before=CreditState.WARNED, after=CreditState.SUSPENSION_WARNED),
                  suspended(notice), restored(notice)):
        await receive(ctx, event)
        await drain(ctx)
    log = await log_of(db, notice.product.product_id)
    assert sorted(m["template"] for m in log) == [
        "bill_notice", "restore_notice", "suspension_notice_contact",
        "suspension_notice_manager", "suspension_warning"]
    assert all(m["status"] in ("submitted", "delivered") for m in log), log
    at_smsc = {r["client_ref"]: r for r in await smsc_rows(db, [m["message_id"] for m in log])}
    for m in log:
        row = at_smsc[m["message_id"]]
        # reassembled from the UDH segments on the wire, as the phone shows it
        assert row["text"] == m["text"] and row["recipient"] == m["recipient"]
        expected = 1 if len(m["text"]) <= 70 else math.ceil(len(m["text"]) / 67)
        assert row["segments"] == m["segments"] == expected
        assert m["provider_message_id"] == row["smsc_message_id"]
    assert max(m["segments"] for m in log) >= 2  # the seed texts are longer than 70

    delivered = await eventually(lambda: log_of(db, notice.product.product_id),
                                 lambda ms: all(m["status"] == "delivered" for m in ms),
                                 timeout=30, what="receipts over deliver_sm")
    assert all(m["delivered_at"] is not None for m in delivered)
    stop.set()
    await link


async def test_seventy_characters_one_message_seventy_one_two(
    db: AsyncEngine, smpp: Smpp, uid: str,
) -> None:
    texts = {f"m70-{uid}": "通" * 70, f"m71-{uid}": "通" * 71, f"m134-{uid}": "通" * 135}
    outcomes = await smpp.provider.submit_many(
        [Submission(ref, "13800000001", t, 0) for ref, t in texts.items()])
    assert all(o.provider_message_id for o in outcomes), outcomes
    rows = {r["client_ref"]: r for r in await smsc_rows(db, list(texts))}
    assert {ref: rows[ref]["segments"] for ref in texts} == {
        f"m70-{uid}": 1, f"m71-{uid}": 2, f"m134-{uid}": 3}
    assert all(rows[ref]["text"] == t for ref, t in texts.items())
    # A resubmission (same client reference) is recognised: same id, counted, not stored twice.
    again = await smpp.provider.submit_many([Submission(f"m71-{uid}", "13800000001",
                                                        texts[f"m71-{uid}"], 0)])
    assert again[0].provider_message_id == rows[f"m71-{uid}"]["smsc_message_id"]
    assert (await smsc_rows(db, [f"m71-{uid}"]))[0]["submits"] == 2


@pytest.mark.parametrize("smpp", [2.0], indirect=True)
async def test_throttled_submits_back_off_and_get_through(smpp: Smpp, uid: str) -> None:
    batch = [Submission(f"t{i}-{uid}", "13800000001", f"限速{i}", 1) for i in range(6)]
    outcomes = await smpp.provider.submit_many(batch)
    assert all(o.provider_message_id for o in outcomes), outcomes
    assert smpp.server.throttled > 0


async def test_reconnects_after_the_link_drops_and_keeps_it_alive(smpp: Smpp, uid: str) -> None:
    stop = asyncio.Event()
    link = asyncio.create_task(smpp.provider.run(stop))
    await eventually(lambda: _value(len(smpp.server.receivers)), lambda n: n == 1,
                     what="bound")
    await asyncio.sleep(1.0)  # several enquire_link periods: the link stays up
    assert smpp.provider.binds == 1
    smpp.server.receivers[0].close()  # the SMSC drops the link
    await eventually(lambda: _value(smpp.provider.binds), lambda n: n == 2, what="rebound")
    [outcome] = await smpp.provider.submit_many([Submission(f"r-{uid}", "13800000001", "x", 1)])
    assert outcome.provider_message_id
    stop.set()
    await link


async def test_wrong_password_and_bad_bytes(smpp: Smpp) -> None:
    wrong = SmppProvider(replace(smpp.config, password="nope"))
    with pytest.raises(ConnectionError, match="0x0e"):
        await wrong.submit_many([Submission("w", "13800000001", "x", 1)])
    await wrong.aclose()
    for garbage in (b"\xff" * 32, b"\x00\x00\x00\x10\x00\x00\x00\x04" + b"\0" * 8):
        reader, writer = await asyncio.open_connection("127.0.0.1", smpp.server.port)
        writer.write(garbage)
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 10) is not None  # answered, closed
        writer.close()
    [ok] = await smpp.provider.submit_many([Submission("after-garbage", "13800000001", "x", 1)])
    assert ok.provider_message_id  # the SMSC serves on


async def _value(v: int) -> int:
    return v
