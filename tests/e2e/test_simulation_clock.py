"""The simulation clock end to end (docs/simulation-clock.md), through the HTTP API only.

The four services start as processes with `<PREFIX>SIMULATION_CLOCK=true` (and simulation
mode OFF), on an empty database and a broker of their own (the clock topic and the
scheduler's sweeps then concern only this test): a credit-admin moves business time past
tomorrow's 20:00 and the scheduler runs that day's sweep `auto-YYYY-MM-DD` as of its
simulated moment by itself, no `as_of` passed; every service follows the move and says so in
its headers. With the setting off (the suite's own services) the move is refused and no
response carries the header."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.clock import BUSINESS_TZ
from common.simulation import SIMULATED_CLOCK_HEADER, SIMULATED_TIME_HEADER
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack

from .test_startup_logs import BASE, fresh_database, fresh_kafka  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TOKEN = "simclock-token"
STAFF = {"admin-token": ("zhang.wei", "credit-admin"), "viewer-token": ("li.na", "ops-viewer")}
CLOCK_ON = (("SIMULATION_CLOCK", "true"),)


def _specs() -> list[ServiceSpec]:
    def on(prefix: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return (*((prefix + k, v) for k, v in CLOCK_ON), *extra)

    return [
        ServiceSpec("billing-events", "billing_events", "BILLING_", BASE + 1,
                    extra_env=on("BILLING_")),
        ServiceSpec("credit-control", "credit_control", "CREDIT_", BASE + 2, extra_env=on(
            "CREDIT_",
            ("CREDIT_BILLING_URL", f"http://127.0.0.1:{BASE + 1}"),
            ("CREDIT_NOTIFIER_URL", f"http://127.0.0.1:{BASE + 3}"),
            ("CREDIT_GATEWAY_URL", f"http://127.0.0.1:{BASE + 4}"),
            ("CREDIT_PEER_TOKEN", TOKEN),
            # The daily sweep only: no day before the clock's is caught up, no rating run.
            ("CREDIT_SCHEDULER_ENABLED", "true"), ("CREDIT_SCHEDULER_CATCH_UP_DAYS", "0"),
            ("CREDIT_SCHEDULER_MONTH_END_CATCH_UP_DAYS", "0"),
            ("CREDIT_RATING_SCHEDULER_ENABLED", "false"),
            ("CREDIT_COLLECTIONS_SCHEDULED", "false"),
            # Without the wake-up on a move the sweep would wait up to an hour.
            ("CREDIT_SCHEDULER_TICK_S", "3600"))),
        ServiceSpec("notifier", "notifier", "NOTIFIER_", BASE + 3, extra_env=on("NOTIFIER_")),
        ServiceSpec("gateway-adapter", "gateway_adapter", "GATEWAY_", BASE + 4, extra_env=on(
            "GATEWAY_",
            ("GATEWAY_CREDIT_CONTROL_URL", f"http://127.0.0.1:{BASE + 2}"),
            ("GATEWAY_CREDIT_CONTROL_TOKEN", TOKEN))),
    ]


def simulated_time(response: httpx.Response) -> datetime:
    return datetime.fromisoformat(response.headers[SIMULATED_TIME_HEADER])


async def answer(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_a_move_past_the_slot_runs_the_scheduled_sweep_as_of_simulated_time(
    fresh_kafka: str, fresh_database: str, tmp_path: Path,  # noqa: F811
) -> None:
    processes = ServiceProcesses(_specs(), Stack(fresh_database, fresh_kafka), tmp_path, TOKEN,
                                 staff_tokens=STAFF, simulation_mode=False)
    for spec in _specs():
        processes.migrate(spec.name)
    try:
        await asyncio.to_thread(processes.start_all)
        urls = {name: spec.url for name, spec in processes.specs.items()}
        async with (httpx.AsyncClient(base_url=urls["credit-control"], timeout=60, headers={
                        "Authorization": "Bearer admin-token"}) as admin,
                    httpx.AsyncClient(base_url=urls["credit-control"], timeout=60, headers={
                        "Authorization": "Bearer viewer-token"}) as viewer):
            await _moves(admin, viewer, urls)
    finally:
        await asyncio.to_thread(processes.stop_all)
    logs = await asyncio.to_thread(_logs, tmp_path)
    assert "SIMULATED TIME (notifier)" in logs and "SIMULATED TIME (gateway-adapter)" in logs


def _logs(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.glob("*.log"))


async def _moves(admin: httpx.AsyncClient, viewer: httpx.AsyncClient,
                 urls: dict[str, str]) -> None:
    shown = await viewer.get("/v1/clock")
    clock = await answer(shown, 200)
    assert clock["simulation_clock"] is True and clock["moves"] == 0
    assert shown.headers[SIMULATED_CLOCK_HEADER] == "on; offset=0s"
    now = simulated_time(shown)
    day: date = now.date() + timedelta(days=1)  # tomorrow: its 20:00 is surely ahead
    to = datetime(day.year, day.month, day.day, 20, 1, tzinfo=BUSINESS_TZ)
    sweep_id = f"auto-{day.isoformat()}"
    assert (await viewer.get(f"/v1/sweeps/{sweep_id}")).status_code == 404

    # An ops-viewer looks; only a credit-admin moves the clock.
    move = {"move_id": f"m-{uuid.uuid4().hex[:8]}", "to": to.isoformat(),
            "reason": "e2e: past tomorrow's sweep"}
    await answer(await viewer.post("/v1/clock/advance", json=move), 403)
    made = await answer(await admin.post("/v1/clock/advance", json=move), 201)
    assert made["seq"] == 1 and made["moved_by"] == "zhang.wei"
    assert datetime.fromisoformat(made["simulated_at"]) == to
    # The same move again is the same answer; it does not move the clock twice.
    assert await answer(await admin.post("/v1/clock/advance", json=move), 201) == made

    # The scheduler woke on the move and ran tomorrow's sweep as of its own 20:00.
    run = await eventually(lambda: viewer.get(f"/v1/sweeps/{sweep_id}"),
                           lambda r: r.status_code == 200 and r.json()["status"] == "done",
                           timeout=60, interval=0.5, what=f"{sweep_id} done")
    assert run.json()["as_of"] == f"{day.isoformat()}T20:00:00+08:00"
    assert run.json()["catch_up"] is False

    # Every service follows within a moment, and says so on every response.
    for name, url in urls.items():
        async with httpx.AsyncClient(base_url=url, timeout=30) as plain:
            seen = await eventually(lambda plain=plain: plain.get("/healthz"),
                                    lambda r: simulated_time(r) >= to, timeout=30,
                                    interval=0.3, what=f"{name} follows the move")
            assert seen.headers[SIMULATED_CLOCK_HEADER].startswith("on; offset="), name

    # Never back, never nowhere, never past the ceiling: 422, the clock unchanged.
    for bad in ({"to": (to - timedelta(hours=1)).isoformat()},
                {"to": "9000-01-01T00:00:00+08:00"}, {}):
        refused = await admin.post("/v1/clock/advance", json={
            "move_id": f"m-{uuid.uuid4().hex[:8]}", "reason": "e2e", **bad})
        assert refused.status_code == 422, refused.text
    by_a_day = await answer(await admin.post("/v1/clock/advance", json={
        "move_id": f"m-{uuid.uuid4().hex[:8]}", "days": 1, "reason": "e2e: one more day"}), 201)
    assert by_a_day["seq"] == 2
    assert by_a_day["offset_s"] == pytest.approx(made["offset_s"] + 86_400)
    shown = await answer(await viewer.get("/v1/clock"), 200)
    assert shown["moves"] == 2 and shown["last_move"]["move_id"] == by_a_day["move_id"]

    # creditctl clock: the same from a terminal.
    moved = await asyncio.to_thread(creditctl, urls["credit-control"], "clock", "advance",
                                    "--hours", "2", "--reason", "e2e: creditctl", "-o", "json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["seq"] == 3
    shown_cli = await asyncio.to_thread(creditctl, urls["credit-control"], "clock", "show")
    assert shown_cli.returncode == 0 and "SIMULATED TIME" in shown_cli.stdout, shown_cli.stderr


def creditctl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "300", "CREDITCTL_TOKEN": "admin-token",
           "CREDITCTL_CREDIT_URL": url}
    return subprocess.run([sys.executable, "-m", "creditctl", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_without_the_setting_the_clock_is_the_wall_clock_and_a_move_is_refused(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    credit = clients["credit-control"]
    shown = await credit.get("/v1/clock")
    clock = await answer(shown, 200)
    assert clock["simulation_clock"] is False and "SIMULATION_CLOCK=true" in clock["hint"]
    refused = await credit.post("/v1/clock/advance", json={
        "move_id": f"m-{uuid.uuid4().hex[:8]}", "days": 1, "reason": "e2e"})
    assert refused.status_code == 409 and "SIMULATION_CLOCK=true" in refused.text
    for client in clients.values():
        response = await client.get("/healthz")
        assert SIMULATED_TIME_HEADER not in response.headers
        assert SIMULATED_CLOCK_HEADER not in response.headers
