"""The closed loop with the gateway chain (a failed attempt → attempt + 1 after a backoff →
after N a manual work order) and the work-order API's transitions, legal and illegal."""

from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest

from common.contracts.snapshots import ProductFamily, Tier
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier
MAX_ATTEMPTS = 3  # credit-control's default loop_max_attempts


async def _command(api: CreditApi, lg: Ledger) -> dict[str, Any]:
    command: dict[str, Any] = (await api.credit(lg.product_id))["command"]
    return command


async def _failed(api: CreditApi, lg: Ledger, attempt: int) -> dict[str, Any]:
    """Wait until attempt `attempt` failed at the gateway and its retry is scheduled."""
    return await eventually(lambda: _command(api, lg),
                            lambda c: c["attempt"] == attempt and c["retry_at"] is not None,
                            what=f"attempt {attempt} failed, retry scheduled")


async def _retries(api: CreditApi, as_of: datetime) -> None:
    r = await api.http.post("/v1/provisioning/retries", json={"as_of": as_of.isoformat()})
    assert r.status_code == 200, r.text


async def test_failed_chain_attempts_retry_with_backoff_then_escalate_to_a_work_order(
    api: CreditApi, test_year: int
) -> None:
    """A MAS product of a vendor the gateway has no adapter for: every attempt fails, final."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "loop", F.MAS, T.LOW, vendor="nosuchvendor")
    await api.deliver((lg, lg.bill_run(f"{y}-08", 4_000, at(date(y, 9, 2), 9))))
    await api.sweep(date(y, 9, 25), f"loop-{uid}-sw")  # notice before suspension (docs/rules.md)
    await api.sweep(date(y, 9, 30), f"loop-{uid}")

    first = await _failed(api, lg, 1)
    retry_at = datetime.fromisoformat(first["retry_at"])
    await _retries(api, retry_at - timedelta(seconds=1))  # backoff not over: nothing resent
    assert (await _command(api, lg))["attempt"] == 1
    await _retries(api, retry_at)
    second = await _failed(api, lg, 2)
    # The backoff doubles: attempt 2 failed after attempt 1 and waits 2× as long.
    assert datetime.fromisoformat(second["retry_at"]) - retry_at >= timedelta(seconds=60)
    await _retries(api, datetime.fromisoformat(second["retry_at"]))

    credit = await eventually(lambda: api.credit(lg.product_id),
                              lambda c: c["pending_work_order_id"] is not None,
                              what="escalated to a work order")
    assert credit["state"] == "suspend_requested"
    assert credit["command"]["attempt"] == MAX_ATTEMPTS
    commands = await api.outbox(lg.product_id, "provisioning.commands.v1")
    assert [(c["attempt"], c["sequence"], c["action"]) for c in commands] == [
        (n, 1, "suspend") for n in range(1, MAX_ATTEMPTS + 1)]
    assert len({c["command_id"] for c in commands}) == 1
    [order] = await api.work_orders(product_id=lg.product_id)
    assert order["work_order_id"] == credit["pending_work_order_id"]
    assert (order["action"], order["status"], order["role"]) == ("suspend", "created", "operator")
    assert f"after {MAX_ATTEMPTS} attempts" in order["reason"]
    assert "no gateway adapter" in order["reason"]

    # Nothing more is resent once a person owns it; done by hand → suspended.
    await _retries(api, datetime.fromisoformat(second["retry_at"]) + timedelta(days=1))
    assert len(await api.outbox(lg.product_id, "provisioning.commands.v1")) == MAX_ATTEMPTS
    assert len(await api.finish_work_orders(lg.product_id)) == 1
    assert await api.state(lg.product_id) == "suspended"
    changes = [e for e in await api.outbox(lg.account_id, "credit.decisions.v1")
               if "decision" not in e]
    assert [(e["state_before"], e["state_after"]) for e in changes] == [
        ("suspend_requested", "suspended")]


async def _post(api: CreditApi, path: str, body: dict[str, Any], status: int) -> Any:
    r = await api.http.post(path, json=body)
    assert r.status_code == status, r.text
    return r.json()


async def test_work_order_transitions_and_illegal_moves(
    api: CreditApi, test_year: int, role_clients: dict[str, dict[str, httpx.AsyncClient]],
) -> None:
    y, uid = test_year, new_uid()
    lg = ledger(uid, "wo", F.WORK_ORDER, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-08", 4_000, at(date(y, 9, 2), 9))))
    await api.sweep(date(y, 9, 25), f"wo-{uid}-sw")  # notice before suspension (docs/rules.md)
    await api.sweep(date(y, 9, 30), f"wo-{uid}")
    [order] = await api.work_orders(product_id=lg.product_id)
    wo = f"/v1/work-orders/{order['work_order_id']}"
    assert (order["action"], order["status"], order["role"]) == ("suspend", "created", "operator")
    created = at(date(y, 9, 30))
    assert datetime.fromisoformat(order["due_at"]) == created + timedelta(hours=24)
    overdue = await api.work_orders(product_id=lg.product_id,
                                    overdue_at=(created + timedelta(hours=25)).isoformat())
    assert [o["work_order_id"] for o in overdue] == [order["work_order_id"]]
    assert await api.work_orders(product_id=lg.product_id,
                                 overdue_at=(created + timedelta(hours=23)).isoformat()) == []

    # Bad requests: 4xx, nothing changes.
    await _post(api, f"{wo}/assign", {"by": "m", "assignee": "o", "role": "boss"}, 422)
    await _post(api, f"{wo}/done", {"by": "o", "note": ""}, 422)
    await _post(api, "/v1/work-orders/WO-nosuch/assign", {"by": "m", "assignee": "o"}, 404)
    assert (await api.http.get("/v1/work-orders/WO-nosuch")).status_code == 404
    assert (await api.http.get(wo)).json()["steps"] == order["steps"]
    # A filter value that does not exist is refused, never answered with an empty list.
    for bad in ({"status": "open"}, {"action": "bogus"}, {"role": "boss"}):
        r = await api.http.get("/v1/work-orders", params={"product_id": lg.product_id, **bad})
        assert r.status_code == 422 and r.json()["error"] == "validation_error", (bad, r.text)
    assert [o["work_order_id"] for o in await api.work_orders(
        product_id=lg.product_id, status="created", action="suspend")] == [
        order["work_order_id"]]

    # Failed: recorded, and a follow-up goes to the group billing manager; still not suspended.
    await _post(api, f"{wo}/assign", {"by": "集团账务管理员", "assignee": "operator-2"}, 200)
    operator = role_clients["operator"]["credit-control"]  # token subject: wang.fang
    r = await operator.post(f"{wo}/fail", json={"by": "operator-2", "note": "平台登录失败"})
    assert r.status_code == 200, r.text
    # who did each step is the token's subject, whatever the body says
    assert [(s["status"], s["by"]) for s in r.json()["steps"]] == [
        ("created", "credit-control"), ("assigned", "service"), ("failed", "wang.fang")]
    await _post(api, f"{wo}/done", {"by": "operator-2", "note": "late"}, 409)
    await _post(api, f"{wo}/assign", {"by": "m", "assignee": "o"}, 409)
    assert await api.state(lg.product_id) == "suspend_requested"
    follow = [o for o in await api.work_orders(product_id=lg.product_id)
              if o["work_order_id"] != order["work_order_id"]]
    assert [(o["status"], o["role"], o["action"]) for o in follow] == [
        ("created", "group_billing_manager", "suspend")]
    assert (await api.work_orders(product_id=lg.product_id, role="group_billing_manager")
            ) == follow

    fwo = f"/v1/work-orders/{follow[0]['work_order_id']}"
    await _post(api, f"{fwo}/done", {"by": "集团账务管理员", "note": "已人工停用"}, 200)
    await _post(api, f"{fwo}/done", {"by": "集团账务管理员", "note": "again"}, 409)
    credit = await api.credit(lg.product_id)
    assert credit["state"] == "suspended"
    assert credit["pending_work_order_id"] is None
    assert credit["state_history"][-1]["cause"].startswith(
        f"work order {follow[0]['work_order_id']} done by service")


async def test_a_payment_cancels_the_escalated_suspension_work_order(
    api: CreditApi, test_year: int
) -> None:
    """The chain failed every attempt, so a person was asked to suspend by hand; then the
    customer pays. The manual suspension must not be carried out any more (it would be a
    wrong suspension, 错停): the work order is cancelled and the chain gets the restore."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "paid", F.MAS, T.LOW, vendor="nosuchvendor")
    await api.deliver((lg, lg.bill_run(f"{y}-08", 4_000, at(date(y, 9, 2), 9))))
    await api.sweep(date(y, 9, 25), f"paid-{uid}-sw")  # notice before suspension (docs/rules.md)
    await api.sweep(date(y, 9, 30), f"paid-{uid}")
    for attempt in range(1, MAX_ATTEMPTS):
        failed = await _failed(api, lg, attempt)
        await _retries(api, datetime.fromisoformat(failed["retry_at"]))
    credit = await eventually(lambda: api.credit(lg.product_id),
                              lambda c: c["pending_work_order_id"] is not None,
                              what="escalated to a work order")
    [order] = await api.work_orders(product_id=lg.product_id)
    assert (order["action"], order["status"]) == ("suspend", "created")

    await api.deliver((lg, lg.payment(at(date(y, 10, 3), 10))))

    [after] = await api.work_orders(product_id=lg.product_id)
    assert after["work_order_id"] == order["work_order_id"]
    assert after["status"] == "cancelled"
    assert after["steps"][-1]["status"] == "cancelled"
    assert "restore" in after["steps"][-1]["note"]
    assert await api.work_orders(product_id=lg.product_id, status="created") == []
    credit = await api.credit(lg.product_id)
    assert credit["state"] == "restore_requested"
    commands = await api.outbox(lg.product_id, "provisioning.commands.v1")
    assert [(c["sequence"], c["action"]) for c in commands][-1] == (2, "restore")
