"""Shared set-up of the end-to-end tests that stream balance events: one group customer with
many single-product accounts charged in one bill month, and counts of what billing published
and credit-control applied for those accounts."""

from dataclasses import dataclass

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def post(client: httpx.AsyncClient, path: str, body: dict[str, object],
               accept: tuple[int, ...] = (201,)) -> None:
    r = await client.post(path, json=body)
    assert r.status_code in accept, f"{path}: {r.status_code} {r.text}"


@dataclass(frozen=True)
class Group:
    prefix: str  # ids: G<prefix><uid>, A<prefix><uid>-<i>, P…, CP…, C…
    name: str
    tier: str
    manager_phone: str
    contact_phone: str
    manager_name: str


async def open_accounts(billing: httpx.AsyncClient, group: Group, uid: str, bill_month: str,
                        count: int, charge_fen: int) -> list[str]:
    """`count` ADC accounts of one customer, each charged `charge_fen` in `bill_month`."""
    p, customer = group.prefix, f"G{group.prefix}{uid}"
    await post(billing, "/v1/customers", {
        "customer_id": customer, "name": f"{group.name}{uid}", "tier": group.tier,
        "account_manager": {"name": group.manager_name, "phone": group.manager_phone},
        "contacts": [{"name": "联系人", "phone": group.contact_phone}]})
    accounts = []
    for i in range(count):
        account, product = f"A{p}{uid}-{i}", f"P{p}{uid}-{i}"
        await post(billing, "/v1/accounts", {"account_id": account, "customer_id": customer})
        await post(billing, "/v1/products", {
            "product_id": product, "account_id": account, "cpno": f"CP{p}{uid}-{i}",
            "name": "集团V网", "family": "ADC"})
        await post(billing, "/v1/charges", {
            "charge_id": f"C{p}{uid}-{i}", "account_id": account, "product_id": product,
            "bill_month": bill_month, "amount_fen": charge_fen})
        accounts.append(account)
    return accounts


async def count_for(db: AsyncEngine, sql: str, accounts: list[str]) -> int:
    """`sql` counts rows for the accounts bound as `:a`."""
    async with db.connect() as conn:
        return int(await conn.scalar(text(sql), {"a": accounts}) or 0)


PUBLISHED = "SELECT count(*) FROM billing.outbox WHERE key = ANY(:a)"
APPLIED = ("SELECT count(*) FROM credit.inbox i JOIN billing.outbox o ON o.event_id = i.event_id "
           "WHERE i.consumer = 'credit-control' AND o.key = ANY(:a)")


async def published_count(db: AsyncEngine, accounts: list[str]) -> int:
    return await count_for(db, PUBLISHED, accounts)


async def applied_count(db: AsyncEngine, accounts: list[str]) -> int:
    return await count_for(db, APPLIED, accounts)
