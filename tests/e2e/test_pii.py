"""Personal data: a full run (customer with contacts and an account manager, bill run, month-end
sweep, suspension notices A and B) leaves no phone number and no name of theirs in any
service's log; the message log shows them in full only to roles allowed to see them."""

import calendar
from typing import Any

import httpx
import pytest

from common.pii import MOBILE, mask_name
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _people(uid: str) -> dict[str, str]:
    digits = f"{int(uid, 16) % 10**8:08d}"
    return {"contact_name": f"欧阳{uid}", "contact_phone": f"137{digits}",
            "manager_name": f"司马{uid}经理", "manager_phone": f"158{digits}"}


async def _ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _bill_and_suspend(billing: httpx.AsyncClient, credit: httpx.AsyncClient,
                            uid: str, year: int, people: dict[str, str], month: int) -> str:
    """A bill run closes `month` for every account; the sweeps at the end of the next month
    suspend (each test takes its own month)."""
    customer, account, product = f"GPII{uid}", f"APII{uid}", f"PPII{uid}"
    await _ok(await billing.post("/v1/customers", json={
        "customer_id": customer, "name": f"隐私测试集团{uid}", "tier": "low",
        "account_manager": {"name": people["manager_name"], "phone": people["manager_phone"]},
        "contacts": [{"name": people["contact_name"], "phone": people["contact_phone"]}]}))
    await _ok(await billing.post("/v1/accounts", json={"account_id": account,
                                                       "customer_id": customer}))
    await _ok(await billing.post("/v1/products", json={
        "product_id": product, "account_id": account, "cpno": f"CPPII{uid}", "name": "集团V网",
        "family": "ADC"}))
    await _ok(await billing.post("/v1/charges", json={
        "charge_id": f"CPII{uid}", "account_id": account, "product_id": product,
        "bill_month": f"{year}-{month:02d}", "amount_fen": 8800}))
    await _ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BRPII{uid}", "bill_month": f"{year}-{month:02d}",
        "as_of": f"{year}-{month + 1:02d}-02T09:00:00+08:00"}))
    # The bill run's balance events reach credit-control asynchronously: a sweep run before
    # they are applied sees nothing owed (as staff would, look at the product's facts first).
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.status_code == 200
                     and r.json()["facts"]["amount_due_fen"] == 8800,
                     what="the bill run reached credit-control", timeout=120)
    # the 25th's sweep (the suspension warning comes first), then the month end's: suspended
    next_month_end = f"{year}-{month + 1:02d}-{calendar.monthrange(year, month + 1)[1]}"
    for n, as_of in enumerate((f"{year}-{month + 1:02d}-25T20:00:00+08:00",
                               f"{next_month_end}T20:00:00+08:00")):
        swept = await _ok(await credit.post("/v1/sweeps", json={"sweep_id": f"SPII{n}{uid}",
                                                                "as_of": as_of}))
        if swept.get("held"):
            # Earlier tests' unpaid products fall due in this far-off year too; the guard
            # holds a sweep suspending so many, and staff confirm it, as they would.
            confirm = await credit.post(f"/v1/sweeps/SPII{n}{uid}/confirm",
                                        json={"note": "测试: 已核实"})
            assert confirm.status_code == 200, confirm.text
        if n == 0:  # suspended only once the suspension warning reached the contact
            await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                             lambda r: r.json()["ladder"]["notice"]["status"] == "delivered",
                             what="the suspension warning delivered", timeout=120)
    return product


async def test_a_full_run_logs_no_phone_number_and_no_name(
    services: ServiceProcesses, clients: dict[str, httpx.AsyncClient], uid: str,
    test_year: int,
) -> None:
    people = _people(uid)
    product = await _bill_and_suspend(clients["billing-events"], clients["credit-control"],
                                      uid, test_year + 11, people, month=5)
    notifier = clients["notifier"]

    async def sent() -> list[dict[str, Any]]:
        return (await notifier.get("/v1/messages", params={"product_id": product})).json()

    messages = await eventually(sent, lambda ms: {m["template"] for m in ms} >= {
        "bill_notice", "suspension_notice_contact", "suspension_notice_manager"},
        what="bill notice and suspension notices A and B")
    recipients = {m["recipient"] for m in messages}
    assert recipients == {people["contact_phone"], people["manager_phone"]}

    # Every line the services wrote (this run's and earlier runs' into the same folder): no
    # mobile number at all, none of these people's names.
    logs = {path.name: path.read_text(encoding="utf-8", errors="replace")
            for path in services.log_dir.glob("*.log")}
    assert {f"{name}.log" for name in clients} <= {n for n, text in logs.items() if text}
    secrets = [*people.values(), *(v.encode("unicode_escape").decode() for v in people.values())]
    for name, text in logs.items():
        assert MOBILE.findall(text) == [], f"{name} logs phone numbers"
        assert [s for s in secrets if s in text] == [], f"{name} logs personal data"


async def test_the_message_log_masks_people_for_roles_without_pii_rights(
    clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]], uid: str, test_year: int,
) -> None:
    people = _people(uid)
    product = await _bill_and_suspend(clients["billing-events"], clients["credit-control"],
                                      uid, test_year + 11, people, month=7)

    async def manager_notice(role: str) -> dict[str, Any]:
        async def found() -> list[dict[str, Any]]:
            r = await role_clients[role]["notifier"].get(
                "/v1/messages", params={"product_id": product})
            return [m for m in r.json() if m["template"] == "suspension_notice_manager"]
        # wait for the receipt too: the two reads below must see the same, final row
        return (await eventually(found, lambda ms: len(ms) == 1 and ms[0]["delivered_at"],
                                 what="notice B delivered"))[0]

    full = await manager_notice("operator")
    assert (full["recipient"], full["recipient_name"]) == (people["manager_phone"],
                                                           people["manager_name"])
    assert full["text"].startswith(people["manager_name"])
    masked = await manager_notice("ops-viewer")
    phone = people["manager_phone"]
    assert masked["recipient"] == f"{phone[:3]}****{phone[-4:]}"
    assert masked["recipient_name"] == mask_name(people["manager_name"])
    assert masked["text"].startswith(mask_name(people["manager_name"]))
    assert people["manager_name"] not in masked["text"]
    assert {k: v for k, v in masked.items() if k not in ("recipient", "recipient_name", "text")
            } == {k: v for k, v in full.items() if k not in ("recipient", "recipient_name",
                                                             "text")}

    async def received() -> httpx.Response:
        return await role_clients["ops-viewer"]["notifier"].get(
            "/v1/smsc/messages", params={"recipient": phone})

    smsc = await eventually(received, lambda r: len(r.json()) >= 1, what="the SMSC got it")
    assert {m["recipient"] for m in smsc.json()} == {masked["recipient"]}
    assert phone not in smsc.text and people["manager_name"] not in smsc.text
