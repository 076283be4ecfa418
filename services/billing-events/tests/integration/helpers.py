"""Shared set-up for billing's integration tests."""

from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MONEY_TABLES = ("charges", "payments", "reversals", "adjustments", "write_offs",
                "write_off_lapses", "deposit_movements", "deductions")


async def post(billing: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await billing.post(path, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def open_account(
    billing: httpx.AsyncClient, uid: str, family: str = "ADC", tier: str = "mid",
    vendor: str | None = None,
) -> dict[str, str]:
    ids = {"customer": f"G{uid}", "account": f"A{uid}", "product": f"P{uid}"}
    await post(billing, "/v1/customers", {
        "customer_id": ids["customer"], "name": f"测试集团{uid}", "tier": tier,
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "联系人", "phone": "13800000003"}]})
    await post(billing, "/v1/accounts", {"account_id": ids["account"],
                                         "customer_id": ids["customer"]})
    await post(billing, "/v1/products", {
        "product_id": ids["product"], "account_id": ids["account"], "cpno": f"CP{uid}",
        "name": "企信通", "family": family, "vendor": vendor})
    return ids


async def charge_and_close(
    billing: httpx.AsyncClient, ids: dict[str, str], month: str, fen: int, uid: str
) -> None:
    await post(billing, "/v1/charges", {
        "charge_id": f"C{uid}{month}", "account_id": ids["account"],
        "product_id": ids["product"], "bill_month": month, "amount_fen": fen})
    year, mon = int(month[:4]), int(month[5:])
    nxt = f"{year + mon // 12}-{mon % 12 + 1:02d}"
    await post(billing, "/v1/bill-runs", {"bill_run_id": f"BR{uid}{month}", "bill_month": month,
                                          "as_of": f"{nxt}-02T09:00:00+08:00"})


async def footprint(db: AsyncEngine, account: str) -> dict[str, int]:
    """How many rows the account has in the outbox and each money table."""
    async with db.connect() as conn:
        counts = {"outbox": int(await conn.scalar(text(
            "SELECT count(*) FROM billing.outbox WHERE key = :a"), {"a": account}) or 0)}
        for table in MONEY_TABLES:
            counts[table] = int(await conn.scalar(text(
                f"SELECT count(*) FROM billing.{table} WHERE account_id = :a"),
                {"a": account}) or 0)
    return counts


async def events(db: AsyncEngine, account: str) -> list[dict[str, Any]]:
    """The account's balance events as written to the outbox, oldest first."""
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT payload FROM billing.outbox WHERE key = :a ORDER BY id"), {"a": account})
        return [orjson.loads(r.payload)["payload"] for r in rows]


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    parts = [p["partition"] for p in described[0]["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def messages_since(
    bootstrap: str, topic: str, since: dict[int, int], key: str
) -> list[dict[str, Any]]:
    """Every envelope with this key written to the topic after the offsets in `since`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    ends = await end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, since.get(tp.partition, 0))
        remaining = {tp for tp in tps if ends[tp.partition] > since.get(tp.partition, 0)}
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.key == key.encode():
                        found.append(orjson.loads(record.value or b"{}"))
                if records and records[-1].offset + 1 >= ends[tp.partition]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return found
