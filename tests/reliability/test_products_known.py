"""The invariant "every product billing knows is known to credit-control once quiet"
(invariants/products_known.py): green once credit-control applied the products' master_data
events, and it catches a planted violation of each kind. The defects are made in a
transaction that is rolled back, so no other test sees them."""

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.polling import eventually
from tests.reliability.invariants.products_known import NAME, check_products_known

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, object]) -> None:
    r = await client.post(path, json=body)
    assert r.status_code == 201, r.text


async def _known(credit: httpx.AsyncClient, product_ids: list[str]) -> bool:
    codes = [(await credit.get(f"/v1/products/{p}/credit")).status_code for p in product_ids]
    return all(code == 200 for code in codes)


@pytest.fixture
async def two_products(clients: dict[str, httpx.AsyncClient], uid: str) -> str:
    """A customer's account with two products and no money yet; returns the id prefix."""
    billing, prefix = clients["billing-events"], f"pk{uid}"
    await _post(billing, "/v1/customers", {
        "customer_id": f"{prefix}-g", "name": f"产品可见集团{uid}", "tier": "low",
        "account_manager": {"name": "周经理", "phone": "13900000004"},
        "contacts": [{"name": "联系人", "phone": "13800000004"}]})
    await _post(billing, "/v1/accounts", {"account_id": f"{prefix}-a",
                                          "customer_id": f"{prefix}-g"})
    for n in (1, 2):
        await _post(billing, "/v1/products", {
            "product_id": f"{prefix}-{n}", "account_id": f"{prefix}-a",
            "cpno": f"CP{prefix}-{n}", "name": "集团V网", "family": "ADC"})
    await eventually(lambda: _known(clients["credit-control"], [f"{prefix}-1", f"{prefix}-2"]),
                     bool, what="credit-control knows both products", timeout=120)
    return prefix


async def test_every_product_is_known_once_quiet(db: AsyncEngine, two_products: str) -> None:
    async with db.connect() as conn:
        found = await check_products_known(conn, two_products)
    assert found.name == NAME
    assert (found.expected, found.found, found.ok) == (2, 2, True), found


@pytest.mark.parametrize(("sql", "kind"), [
    # a product billing added without telling credit-control (issue 23.3 before the fix)
    ("INSERT INTO billing.products (product_id, account_id, cpno, name, family) "
     "VALUES (:p || '-3', :p || '-a', 'CP' || :p || '-3', '集团V网', 'ADC')", "lost"),
    ("DELETE FROM credit.product_credit WHERE product_id = :p || '-1'", "lost"),
    ("UPDATE credit.product_credit SET product_amount_due_fen = 999 "
     "WHERE product_id = :p || '-2'", "wrong"),
])
async def test_a_planted_violation_is_caught(
    db: AsyncEngine, two_products: str, sql: str, kind: str
) -> None:
    async with db.connect() as conn:
        trans = await conn.begin()
        try:
            assert (await conn.execute(text(sql), {"p": two_products})).rowcount == 1
            found = await check_products_known(conn, two_products)
        finally:
            await trans.rollback()
    assert getattr(found, kind) == 1, found
    assert not found.ok and found.examples
