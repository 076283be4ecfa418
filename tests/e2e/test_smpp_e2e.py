"""The notifier over SMPP 3.4, end to end: the session's notifier is replaced for the test by
one configured for the `smpp` provider, binding as a transceiver to the simulated SMSC's SMPP
server (in the same process, on a port of its own — a real SMSC would be the same settings
pointed elsewhere). A bill run and the suspension-warning sweep make the seed's texts; they
leave as UCS-2 submit_sm in 67-character segments behind a UDH, the SMSC reassembles them,
and its deliver_sm receipts mark the message log delivered."""

import dataclasses
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"


@pytest.fixture
async def smpp_notifier(services: ServiceProcesses, stack: Stack) -> AsyncIterator[None]:
    base = services.specs["notifier"]
    port = base.port + 3  # BASE_PORT + 6: free in the suite's range
    spec = dataclasses.replace(base, extra_env=(
        *base.extra_env, ("NOTIFIER_PROVIDER", "smpp"), ("NOTIFIER_SMPP_PORT", str(port)),
        ("NOTIFIER_SMSC_SMPP_PORT", str(port)), ("NOTIFIER_SMPP_PASSWORD", "e2e-pw"),
        ("NOTIFIER_CUSTOMER_SENDING_HOURS", "00:00-24:00")))
    services.stop("notifier")
    mine = ServiceProcesses([spec], stack, ROOT / "test-artifacts" / f"logs-smpp-{port}", TOKEN)
    try:
        mine.start_all()
        yield
    finally:
        mine.stop_all()
        services.start("notifier")
        services.wait_ready("notifier")


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_seed_texts_over_smpp_segmented_and_receipted(
    clients: dict[str, httpx.AsyncClient], smpp_notifier: None, uid: str, test_year: int,
) -> None:
    billing, credit, notifier = (clients["billing-events"], clients["credit-control"],
                                 clients["notifier"])
    y = test_year + 16
    contact = f"138{int(uid[:8], 16) % 10**8:08d}"
    await ok(await billing.post("/v1/customers", json={
        "customer_id": f"G{uid}", "name": f"某某科技有限公司{uid}", "tier": "low",
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": contact}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": f"ASM{uid}", "customer_id": f"G{uid}"}))
    await ok(await billing.post("/v1/products", json={
        "product_id": f"PSM{uid}", "account_id": f"ASM{uid}", "cpno": f"CPSM{uid}",
        "name": "集团手机报", "family": "ADC"}))
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"CSM{uid}", "account_id": f"ASM{uid}", "product_id": f"PSM{uid}",
        "bill_month": f"{y}-10", "amount_fen": 12345}))
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BRSM{y}10{uid}", "bill_month": f"{y}-10",
        "as_of": f"{y}-11-02T09:00:00+08:00"}))


    async def state() -> str | None:
        r = await credit.get(f"/v1/products/PSM{uid}/credit")
        return str(r.json()["state"]) if r.status_code == 200 else None

    # The bill run reaches credit-control over Kafka: the sweep must come after it, or it
    # finds nothing owing and warns no one.
    await eventually(state, lambda s: s == "warned", timeout=60,
                     what="credit-control applied the bill run")
    await ok(await credit.post("/v1/sweeps", json={
        "sweep_id": f"SSM{y}1125{uid}", "as_of": f"{y}-11-25T20:00:00+08:00"}))

    async def log() -> list[dict[str, Any]]:
        return (await notifier.get("/v1/messages", params={"product_id": f"PSM{uid}"})).json()

    delivered = await eventually(
        log, lambda ms: len(ms) >= 2 and all(m["status"] == "delivered" for m in ms),
        timeout=90, what="the bill notice and the suspension warning delivered over SMPP")
    assert sorted(m["template"] for m in delivered) == ["bill_notice", "suspension_warning"]
    at_smsc = (await notifier.get("/v1/smsc/messages", params={"recipient": contact})).json()
    by_text = {r["text"]: r for r in at_smsc}
    for m in delivered:
        assert m["text"] in by_text, "reassembled at the SMSC exactly as the log has it"
        expected = 1 if len(m["text"]) <= 70 else math.ceil(len(m["text"]) / 67)
        assert by_text[m["text"]]["segments"] == m["segments"] == expected > 1
        assert m["provider_message_id"]
