"""`make play`: `make run` with the simulation clock on, then a month of business time played
in a few minutes (docs/simulation-clock.md).

Starts everything as `make run` does (the demo included) with `<PREFIX>SIMULATION_CLOCK=true`
in every service, then moves the clock day by day through the month after the demo's
December (or after where an earlier play left the clock: it only moves forward), to 20:01 of
each day: the scheduler runs that day's sweep `auto-YYYY-MM-DD` by itself, its SMS go out
through the notifier (held ones released when the simulated morning comes), the chain
suspends and restores. One line per day; 晨光制造 pays on the 12th, so a restore happens too.
CREDITCTL_PLAY_DAY_S sets the wall seconds per day (3). Ctrl-C stops everything.
"""

import os
import signal
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from common.clock import BUSINESS_TZ

sys.path.insert(0, str(Path(__file__).parent))
import run  # deploy/local/run.py: the same start as `make run`

DAY_S = float(os.environ.get("CREDITCTL_PLAY_DAY_S", "3"))
DEMO_END = datetime(2026, 12, 31, 21, 0, tzinfo=BUSINESS_TZ)  # the demo's last sweep
SLOT = (20, 1)  # just past the scheduler's 20:00 (CREDIT_SCHEDULER_TIME)
PAYER = ("demo-g4", "晨光制造", 30_000, 12)  # (group, name, fen, day of the month it pays)
WATCHED = [("demo-g1", "星河物流"), ("demo-g2", "蓝海科技"), ("demo-g3", "青松教育"),
           ("demo-g4", "晨光制造"), ("demo-g7", "金桥银行")]


def month_to_play(now: datetime) -> list[date]:
    """Every day of the month after the later of `now` and the demo's end."""
    start = max(now, DEMO_END).date().replace(day=1) + timedelta(days=32)
    first = start.replace(day=1)
    days, day = [], first
    while day.month == first.month:
        days.append(day)
        day += timedelta(days=1)
    return days


def token_of(staff: dict[str, tuple[str, str]], role: str) -> str:
    """A demo staff member's token of `role` (the clock: credit-admin; payments: billing)."""
    return next((t for t, (_, r) in staff.items() if r == role), run.TOKEN)


def main() -> None:
    for spec in run.SPECS:
        os.environ[f"{spec.env_prefix}SIMULATION_CLOCK"] = "true"
    os.environ["CREDITCTL_RUN_DETACH"] = "1"  # run.main starts everything and returns
    run.main()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, run._stop_requested)
    urls = {s.name: s.url for s in run.SPECS}
    staff = run.staff_tokens()
    try:
        with (httpx.Client(base_url=urls["credit-control"], timeout=60, headers={
                  "Authorization": f"Bearer {token_of(staff, 'credit-admin')}"}) as credit,
              httpx.Client(base_url=urls["billing-events"], timeout=60, headers={
                  "Authorization": f"Bearer {token_of(staff, 'billing')}"}) as billing):
            play(credit, billing)
            print("The month is played; the services keep running on simulated time "
                  "(dashboard as above). Ctrl-C stops everything.")
            while True:
                time.sleep(3600)
    except run._StopRequested:
        print("\nstopping ...")
    finally:
        run.stop_services()
        run.subprocess.run(["bash", str(run.ROOT / "deploy/local/stack.sh"), "stop"],
                           env={**os.environ, "STACK": run.RUN_STACK}, check=False)


def play(credit: httpx.Client, billing: httpx.Client) -> None:
    now = datetime.fromisoformat(_ok(credit.get("/v1/clock"))["now"])
    days = month_to_play(now)
    print(f"\n模拟时钟 SIMULATED TIME: playing {days[0]:%Y-%m} ({len(days)} days, "
          f"{DAY_S:g} s each) from {now:%Y-%m-%d %H:%M}")
    for day in days:
        began = time.monotonic()
        to = datetime(day.year, day.month, day.day, *SLOT, tzinfo=BUSINESS_TZ)
        _ok(credit.post("/v1/clock/advance", json={
            "move_id": f"play-{day.isoformat()}", "to": to.isoformat(),
            "reason": f"make play: {day.isoformat()}'s sweep"}))
        line = f"{day} {day:%a}  {_sweep_line(credit, day)}"
        if day.day == PAYER[3]:
            line += "  " + _pay(billing, day)
        print(line + "  " + _states(credit), flush=True)
        time.sleep(max(0.0, DAY_S - (time.monotonic() - began)))


def _sweep_line(credit: httpx.Client, day: date) -> str:
    sweep_id = f"auto-{day.isoformat()}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = credit.get(f"/v1/sweeps/{sweep_id}")
        if found.status_code == 200 and found.json()["status"] in ("done", "held"):
            body = found.json()
            decided = ", ".join(f"{k} {v}" for k, v in sorted(body["decisions"].items()))
            held = " HELD by the guard (POST /v1/sweeps/{id}/confirm)" if body["held"] else ""
            return f"{sweep_id}: {decided or 'nothing to decide'}{held}"
        time.sleep(0.2)
    return f"{sweep_id}: not finished within 120 s (see the logs)"


def _pay(billing: httpx.Client, day: date) -> str:
    gid, name, fen, _ = PAYER
    paid = billing.post("/v1/payments", json={
        "payment_id": f"play-{gid}-{day:%Y%m}", "account_id": f"{gid}-acct", "amount_fen": fen,
        "paid_at": f"{day.isoformat()}T10:00:00+08:00"})
    return (f"[{name} paid {fen / 100:.2f} yuan]" if paid.status_code in (200, 201)
            else f"[{name}'s payment refused: {paid.status_code}]")


def _states(credit: httpx.Client) -> str:
    shown = []
    for gid, name in WATCHED:
        found = credit.get(f"/v1/products/{gid}-p1/credit")
        shown.append(f"{name}:{found.json()['state'] if found.status_code == 200 else '?'}")
    return "| " + " ".join(shown)


def _ok(response: httpx.Response) -> Any:
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


if __name__ == "__main__":
    main()
