"""A small demo data set, loaded through the public APIs. Every id is fixed, so loading it
again is a no-op (idempotent POSTs). The dates are fixed too, so the demo looks the same on
any day: bill month 2026-10, bill run 2026-11-02, sweeps on 2026-11-25 and 2026-11-30,
one customer pays on 2026-12-01."""

import time
from collections.abc import Callable
from typing import Any

import httpx

GROUPS = [
    # (id, name, tier, product family, vendor, product name, charge fen, pays)
    ("demo-g1", "星河物流有限公司", "low", "MAS", "huawei", "华为CRM-MAS", 128_000, True),
    ("demo-g2", "蓝海科技股份有限公司", "mid", "SMS_DIRECT", None, "CRM-短信直联", 56_050, False),
    ("demo-g3", "青松教育集团", "high", "ADC", None, "集团手机报", 9_900, False),
    ("demo-g4", "晨光制造有限公司", "low", "MAS", "jiaxun", "嘉讯CRM-MAS", 30_000, False),
    ("demo-g5", "白云医药连锁", "mid", "ADC", None, "移动办公", 0, False),
]


def load_demo(urls: dict[str, str], token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    billing = httpx.Client(base_url=urls["billing-events"], headers=headers, timeout=30)
    credit = httpx.Client(base_url=urls["credit-control"], headers=headers, timeout=30)
    for i, (gid, name, tier, family, vendor, product, fen, _) in enumerate(GROUPS, start=1):
        _post(billing, "/v1/customers", {
            "customer_id": gid, "name": name, "tier": tier,
            "account_manager": {"name": "陈经理", "phone": f"1390000{i:04d}"},
            "contacts": [{"name": "财务联系人", "phone": f"1380000{i:04d}"}]})
        _post(billing, "/v1/accounts", {"account_id": f"{gid}-acct", "customer_id": gid})
        _post(billing, "/v1/products", {
            "product_id": f"{gid}-p1", "account_id": f"{gid}-acct", "cpno": f"CP-{gid}",
            "name": product, "family": family, "vendor": vendor})
        if fen:
            _post(billing, "/v1/charges", {
                "charge_id": f"{gid}-c202610", "account_id": f"{gid}-acct",
                "product_id": f"{gid}-p1", "bill_month": "2026-10", "amount_fen": fen})
    _post(billing, "/v1/bill-runs", {"bill_run_id": "demo-br-202610", "bill_month": "2026-10",
                                     "as_of": "2026-11-02T09:00:00+08:00"})
    owing = [f"{g[0]}-p1" for g in GROUPS if g[6]]
    _wait_for(credit, owing, lambda body: bool(body["decisions"]), "the bill run's notices")
    _post(credit, "/v1/sweeps", {"sweep_id": "demo-sweep-20261125",
                                 "as_of": "2026-11-25T09:00:00+08:00"})
    _post(credit, "/v1/sweeps", {"sweep_id": "demo-sweep-20261130",
                                 "as_of": "2026-11-30T20:00:00+08:00"})
    # Pay only once the chain confirmed the suspension, so the demo shows the whole cycle.
    _wait_for(credit, owing, _suspended_or_done, "the suspensions")
    for gid, *_, fen, pays in GROUPS:
        if pays:
            _post(billing, "/v1/payments", {
                "payment_id": f"{gid}-pay1", "account_id": f"{gid}-acct", "amount_fen": fen,
                "paid_at": "2026-12-01T10:00:00+08:00"})
    print(f"demo data loaded: {len(GROUPS)} groups, bill run 2026-10, sweeps, one payment")


def _suspended_or_done(body: dict[str, Any]) -> bool:
    """Suspended now, or an earlier load of the demo already went on to restore it."""
    return body["state"] == "suspended" or any(
        d["decision"] == "restore" for d in body["decisions"])


def _wait_for(
    credit: httpx.Client, products: list[str], done: Callable[[dict[str, Any]], bool], what: str
) -> None:
    """Effects travel through Kafka: wait until credit-control shows them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answers = [credit.get(f"/v1/products/{p}/credit") for p in products]
        if all(r.status_code == 200 and done(r.json()) for r in answers):
            return
        time.sleep(0.3)
    raise RuntimeError(f"credit-control did not show {what} within 60 s")


def _post(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    response = client.post(path, json=body)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"demo load failed at {path}: {response.status_code} {response.text}")
