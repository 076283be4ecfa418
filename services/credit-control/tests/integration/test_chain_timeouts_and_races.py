"""The closed loop when the chain stays silent (no final result within `loop_timeout_s` →
attempt + 1 after the backoff → a work order after N) and a payment racing a suspension that
is already in the chain, both against the real gateway-adapter with its fault knobs."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from common.contracts.snapshots import ProductFamily, Tier
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier
MAX_ATTEMPTS = 3  # credit-control's default loop_max_attempts
LOOP_TIMEOUT = timedelta(seconds=300)  # credit-control's default loop_timeout_s
BACKOFF = timedelta(seconds=60)  # credit-control's default loop_backoff_s
# Longer than the loop timeout: a step this slow never answers while credit-control waits.
SILENT_MS = 10 * 60 * 1000
COMMANDS, DECISIONS = "provisioning.commands.v1", "credit.decisions.v1"


@pytest.fixture
async def gateway(clients: dict[str, httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway-adapter's API; its fault knobs are back to the defaults afterwards, whatever
    the test did (they are shared by every gateway process)."""
    client = clients["gateway-adapter"]
    try:
        yield client
    finally:
        r = await client.delete("/v1/faults")
        assert r.status_code == 200, r.text


async def _put_faults(gateway: httpx.AsyncClient, body: dict[str, Any]) -> None:
    r = await gateway.put("/v1/faults", json=body)
    assert r.status_code == 200, r.text


def _slow(stage: str) -> dict[str, Any]:
    return {stage: {"latency": {"distribution": "fixed", "min_ms": SILENT_MS}}}


async def _chain(gateway: httpx.AsyncClient, product_id: str, *,
                 waiting: bool = False) -> dict[str, Any]:
    """The gateway's view of the product's chain. `waiting`: while polling for the first
    command, "never seen" (404) reads as an empty chain rather than a failure."""
    r = await gateway.get(f"/v1/products/{product_id}/chain")
    if waiting and r.status_code == 404:
        return {"boss": {"status": None}, "attempts": []}
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _advance(gateway: httpx.AsyncClient, as_of: datetime) -> None:
    r = await gateway.post("/v1/chain/advance", json={"as_of": as_of.isoformat()})
    assert r.status_code == 200, r.text


async def _retries(api: CreditApi, as_of: datetime) -> None:
    r = await api.http.post("/v1/provisioning/retries", json={"as_of": as_of.isoformat()})
    assert r.status_code == 200, r.text


async def _command(api: CreditApi, lg: Ledger) -> dict[str, Any]:
    command: dict[str, Any] = (await api.credit(lg.product_id))["command"]
    return command


async def _sent(api: CreditApi, lg: Ledger, attempt: int) -> list[dict[str, Any]]:
    """Wait until `attempt` of the command is in credit-control's outbox; every one so far."""
    return await eventually(lambda: api.outbox(lg.product_id, COMMANDS),
                            lambda cs: len(cs) == attempt, what=f"attempt {attempt} sent")


async def _accepted(gateway: httpx.AsyncClient, lg: Ledger, attempt: int) -> None:
    """The gateway holds `attempt`, due only after credit-control's timeout."""
    await eventually(lambda: _chain(gateway, lg.product_id, waiting=True),
                     lambda c: any(a["attempt"] == attempt for a in c["attempts"]),
                     what=f"gateway accepted attempt {attempt}")


def _state_changes(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["state_before"], e["state_after"]) for e in events if "decision" not in e]


def _decision_types(events: list[dict[str, Any]]) -> list[str]:
    return [e["decision"] for e in events if "decision" in e]


async def test_silent_chain_times_out_retries_escalates_then_suspends_exactly_once(
    api: CreditApi, gateway: httpx.AsyncClient, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    lg = ledger(uid, "silent", F.MAS, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-09", 4_000, at(date(y, 10, 2), 9))))
    await api.sweep(date(y, 10, 25), f"silent-{uid}-sw")  # notice before suspension (docs/rules.md)
    await _put_faults(gateway, _slow("boss"))
    await api.sweep(date(y, 10, 31), f"silent-{uid}")

    for attempt in range(1, MAX_ATTEMPTS + 1):
        await _sent(api, lg, attempt)
        await _accepted(gateway, lg, attempt)
        sent_by = datetime.now(UTC)  # credit-control stamped the attempt before this
        # Still inside the timeout: nothing is counted as failed.
        await _retries(api, sent_by + LOOP_TIMEOUT - timedelta(seconds=30))
        assert await _command(api, lg) == {
            "sequence": 1, "action": "suspend", "attempt": attempt, "retry_at": None}
        timed_out_at = sent_by + LOOP_TIMEOUT + timedelta(seconds=1)
        await _retries(api, timed_out_at)
        if attempt == MAX_ATTEMPTS:
            break
        retry_at = timed_out_at + BACKOFF * 2 ** (attempt - 1)
        assert datetime.fromisoformat((await _command(api, lg))["retry_at"]) == retry_at
        await _retries(api, retry_at - timedelta(seconds=1))  # backoff not over: not resent
        assert len(await api.outbox(lg.product_id, COMMANDS)) == attempt
        await _retries(api, retry_at)

    credit = await api.credit(lg.product_id)
    assert credit["state"] == "suspend_requested"
    assert credit["command"]["attempt"] == MAX_ATTEMPTS
    [order] = await api.work_orders(product_id=lg.product_id)
    assert order["work_order_id"] == credit["pending_work_order_id"]
    assert (order["action"], order["status"]) == ("suspend", "created")
    assert "no final result in time" in order["reason"]
    commands = await api.outbox(lg.product_id, COMMANDS)
    assert [(c["attempt"], c["sequence"], c["action"]) for c in commands] == [
        (n, 1, "suspend") for n in range(1, MAX_ATTEMPTS + 1)]
    assert len({c["command_id"] for c in commands}) == 1

    # The gateway comes back: the last attempt (the earlier ones were superseded) goes through.
    await gateway.delete("/v1/faults")
    await _advance(gateway, datetime.now(UTC) + timedelta(milliseconds=SILENT_MS * 2))
    credit = await eventually(lambda: api.credit(lg.product_id),
                              lambda c: c["state"] == "suspended", what="chain confirmed")
    chain = await _chain(gateway, lg.product_id)
    assert chain["gateway"]["blocked"] is True
    assert [a["attempt"] for a in chain["attempts"] if a["outcome"] == "applied"] == [
        MAX_ATTEMPTS]
    assert credit["pending_work_order_id"] is None
    # The escalation is not left for a person to do again (nor overdue for ever).
    [order] = await api.work_orders(product_id=lg.product_id)
    assert order["status"] == "cancelled"
    assert order["steps"][-1]["status"] == "cancelled"
    assert "chain confirmed suspend" in order["steps"][-1]["note"]
    # Nothing is resent later, and the suspension is announced once.
    await _retries(api, datetime.now(UTC) + timedelta(days=1))
    assert len(await api.outbox(lg.product_id, COMMANDS)) == MAX_ATTEMPTS
    events = await api.outbox(lg.account_id, DECISIONS)
    assert _state_changes(events) == [("suspend_requested", "suspended")]
    assert _decision_types(events).count("suspend") == 1


async def test_payment_racing_a_suspension_in_the_chain_restores_and_stays_open(
    api: CreditApi, gateway: httpx.AsyncClient, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    lg = ledger(uid, "race", F.MAS, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-09", 4_000, at(date(y, 10, 2), 9))))
    # BOSS flips at once, EMOS takes longer than the test: the suspension is half-way.
    await api.sweep(date(y, 10, 25), f"race-{uid}-sw")  # notice before suspension (docs/rules.md)
    await _put_faults(gateway, _slow("emos"))
    await api.sweep(date(y, 10, 31), f"race-{uid}")
    chain = await eventually(lambda: _chain(gateway, lg.product_id, waiting=True),
                             lambda c: c["boss"]["status"] == "arrears_suspended",
                             what="BOSS suspended, EMOS order open")
    assert chain["gateway"]["blocked"] is False
    assert await api.state(lg.product_id) == "suspend_requested"

    await gateway.delete("/v1/faults")
    await api.deliver((lg, lg.payment(at(date(y, 11, 1), 10))))
    credit = await eventually(lambda: api.credit(lg.product_id),
                              lambda c: c["state"] == "normal", timeout=30,
                              what="restore confirmed by the chain")
    assert credit["command"] == {"sequence": 2, "action": "restore", "attempt": 1,
                                 "retry_at": None}
    # Let the chain's clock pass the suspension's EMOS step: it was cancelled and stays so.
    await _advance(gateway, datetime.now(UTC) + timedelta(milliseconds=SILENT_MS * 2))
    chain = await _chain(gateway, lg.product_id)
    assert (chain["boss"]["status"], chain["boss"]["sequence"]) == ("active", 2)
    assert chain["gateway"]["blocked"] is False
    r = await gateway.post("/v1/gateway/submit", json={
        "product_id": lg.product_id, "recipient": "13800138000", "text": "到账提醒"})
    assert r.status_code == 200, r.text
    assert await api.state(lg.product_id) == "normal"

    commands = await api.outbox(lg.product_id, COMMANDS)
    assert [(c["sequence"], c["action"], c["attempt"]) for c in commands] == [
        (1, "suspend", 1), (2, "restore", 1)]
    events = await api.outbox(lg.account_id, DECISIONS)
    assert _decision_types(events).count("suspend") == 1
    assert _decision_types(events).count("restore") == 1
    # Never suspended at the gateway: no suspension notice, one state change back to normal.
    assert _state_changes(events) == [("restore_requested", "normal")]
    # ...and the notifier is told the service never stopped: no "已可正常使用" either.
    assert [e["service_was_suspended"] for e in events if "decision" not in e] == [False]
    await _retries(api, datetime.now(UTC) + timedelta(days=1))
    assert len(await api.outbox(lg.product_id, COMMANDS)) == 2
