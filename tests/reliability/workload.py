"""A seeded chaos workload: a few thousand group accounts, their charges, a bill run, sweeps on
the 10th, the 25th and the month's last day, payments in instalments, restores. Everything
goes through the services' public doors (billing's bulk import and HTTP API, credit-control's
sweeps), with client-supplied ids, so a request cut by a crash is simply sent again."""

import asyncio
import csv
import os
import random
import subprocess
import sys
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from billing_events.service_layer.bulk import HEADERS
from billing_events.synthetic import Base, generate
from common.contracts.snapshots import ProductFamily, Tier
from common.testing.processes import ServiceProcesses
from credit_control.credit.domain.profiles import initial_limit_fen
from credit_control.credit.domain.rule_table import DEFAULT_RULES

CHAIN_FAMILIES = ("MAS", "SMS_DIRECT")


@dataclass(frozen=True)
class Scale:
    groups: int
    concurrency: int = 8

    @classmethod
    def from_env(cls) -> "Scale":
        full = os.environ.get("CHAOS_SCALE", "short") == "full"
        return cls(groups=int(os.environ.get("CHAOS_GROUPS", 3000 if full else 500)))


@dataclass
class Workload:
    prefix: str
    year: int
    seed: int
    scale: Scale
    base: Base = field(init=False)
    rng: random.Random = field(init=False)
    sent: int = 0  # HTTP requests that changed a balance (one balance event each)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.base = generate(self.scale.groups, self.seed, [self.bill_month], prefix=self.prefix)

    @property
    def bill_month(self) -> date:
        return date(self.year, 10, 1)

    def day(self, month: int, day: int, hour: int = 9) -> str:
        year = self.year + (month - 1) // 12
        return f"{year}-{(month - 1) % 12 + 1:02d}-{day:02d}T{hour:02d}:00:00+08:00"

    @property
    def accounts(self) -> list[str]:
        return [str(a["account_id"]) for a in self.base.accounts]

    # --- phases -------------------------------------------------------------------------

    def import_master_data(self, services: ServiceProcesses, folder: Path) -> None:
        """Customers, accounts, products through billing's bulk import (no balance events)."""
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for n, kind in enumerate(("customers", "accounts", "products"), start=1):
            path = folder / f"{n}_{kind}.csv"
            with path.open("w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=HEADERS[kind])
                writer.writeheader()
                writer.writerows(getattr(self.base, kind))
            files.append(str(path))
        env = services.env_for(services.specs["billing-events"])
        subprocess.run([sys.executable, "-m", "billing_events", "import-csv", *files],
                       env=env, check=True, capture_output=True)

    def charges(self) -> list[tuple[str, dict[str, Any]]]:
        return [("/v1/charges", {**c, "bill_month": f"{self.bill_month:%Y-%m}"})
                for c in self.base.charges]

    def bill_run(self) -> tuple[str, dict[str, Any]]:
        return ("/v1/bill-runs", {"bill_run_id": f"BR{self.prefix}",
                                  "bill_month": f"{self.bill_month:%Y-%m}",
                                  "as_of": self.day(11, 1)})

    def owed(self) -> dict[str, int]:
        owed: dict[str, int] = {}
        for c in self.base.charges:
            owed[str(c["account_id"])] = owed.get(str(c["account_id"]), 0) + int(c["amount_fen"])
        return owed

    def chain_debtor(self) -> str:
        """The account that never pays, so at least one chain (MAS / SMS-direct) product is
        suspended at the end: the first in the base whose default suspension falls on or
        before the last-day sweep and whose amount due exceeds its star level's credit
        limit. Without it, which accounts pay depends on the random prefix, and a small
        workload may end with no suspended chain product at all."""
        tiers = {str(c["customer_id"]): c for c in self.base.customers}
        customer = {str(a["account_id"]): tiers[str(a["customer_id"])]
                    for a in self.base.accounts}
        owed, last_sweep = self.owed(), date(self.year, 11, 30)
        for p in self.base.products:
            if p["family"] not in CHAIN_FAMILIES:
                continue
            a = str(p["account_id"])
            c = customer[a]
            due = DEFAULT_RULES.suspension(ProductFamily(p["family"]), Tier(c["tier"])).scheduled(
                self.bill_month)
            if due <= last_sweep and owed.get(a, 0) > initial_limit_fen(c["star_level"]):
                return a
        raise LookupError(f"{self.scale.groups} groups (seed {self.seed}) hold no chain "
                          "product that the last-day sweep would suspend; use more groups")

    def early_payers(self) -> list[str]:
        """60 % pay before the 10th, in two instalments (never the chain debtor)."""
        keep = self.chain_debtor()
        # Drawn from the id without the run's random prefix: the same payers on every run.
        return sorted(a for a in self.accounts if a != keep and random.Random(
            f"{self.seed}|{a.removeprefix(self.prefix)}").random() < 0.6)

    def instalments(self, accounts: list[str], tag: str, month: int, day: int,
                    parts: int = 2) -> list[tuple[str, dict[str, Any]]]:
        owed = self.owed()
        requests = []
        for n in range(parts):
            for a in accounts:
                part = owed[a] // parts
                share = part if n < parts - 1 else owed[a] - part * (parts - 1)
                requests.append(("/v1/payments", {
                    "payment_id": f"PAY{a}-{tag}-{n}", "account_id": a, "amount_fen": share,
                    "paid_at": self.day(month, day + n, 10)}))
        return requests

    def late_payers(self) -> list[str]:
        """Half of the rest pay after the last-day sweep (restores)."""
        early, keep = set(self.early_payers()), self.chain_debtor()
        return [a for a in self.accounts if a not in early and a != keep][::2]


    def deposit_holders(self) -> list[str]:
        """The accounts a deduction (划扣) collects from on December's 15th: mid- and
        high-tier customers' accounts with an ADC product (the rule table deducts ADC only,
        in the second arrears month) that pay neither early nor late."""
        paying = set(self.early_payers()) | set(self.late_payers()) | {self.chain_debtor()}
        tiers = {str(c["customer_id"]): str(c["tier"]) for c in self.base.customers}
        tier = {str(a["account_id"]): tiers[str(a["customer_id"])] for a in self.base.accounts}
        owed = self.owed()
        return sorted({str(p["account_id"]) for p in self.base.products
                       if p["family"] == "ADC" and str(p["account_id"]) not in paying
                       and tier[str(p["account_id"])] in ("mid", "high")
                       and owed.get(str(p["account_id"]), 0) > 0})

    def deposits(self, accounts: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """Every other holder's deposit covers half of what it owes (a partial deduction),
        the others' twice (the deduction collects what is owed and leaves the rest held)."""
        owed = self.owed()
        return [("/v1/deposits", {
            "deposit_id": f"DEP{a}", "account_id": a,
            "amount_fen": owed[a] // 2 if n % 2 else owed[a] * 2,
            "received_at": self.day(12, 5, 10)}) for n, a in enumerate(accounts)]


async def send_all(client: httpx.AsyncClient, requests: list[tuple[str, dict[str, Any]]],
                   concurrency: int, during: Callable[[int], Awaitable[None]] | None = None
                   ) -> int:
    """POST every request, `concurrency` at a time, retrying through crashes (the ids make a
    retry harmless). `during(done)` runs beside the load, e.g. to kill a service mid-batch.

    One account's requests go through one worker, in order: billing deadlocks on two
    concurrent balance changes of one account (see docs/reliability.md, "Found")."""
    shards: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(concurrency)]
    for r in requests:
        shards[zlib.crc32(str(r[1].get("account_id", "")).encode()) % concurrency].append(r)
    done = 0

    async def worker(shard: list[tuple[str, dict[str, Any]]]) -> None:
        nonlocal done
        for path, body in shard:
            await post_retrying(client, path, body)
            done += 1

    async def watcher() -> None:
        if during is not None:
            await during(len(requests))

    await asyncio.gather(*(worker(shard) for shard in shards), watcher())
    return done


async def post_retrying(client: httpx.AsyncClient, path: str, body: dict[str, Any],
                        deadline_s: float = 180) -> httpx.Response:
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while True:
        try:
            r = await client.post(path, json=body)
            if r.status_code < 500:
                assert r.status_code in (200, 201), f"{path} {r.status_code} {r.text}"
                return r
        except httpx.TransportError:
            pass
        if loop.time() > until:
            raise TimeoutError(f"{path} kept failing for {deadline_s}s")
        await asyncio.sleep(0.3)
