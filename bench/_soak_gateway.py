"""The soak's gateway probes: MAS enterprises suspended by a balance event in the middle of
the soak's load, each watched by a CMPP 2.0 client sending through the industry gateway.

Per probe, at its own moment of the soak (one every `every` seconds):
1. a CMPP client logs in as the enterprise and sends a CMPP_SUBMIT every `interval_ms`
   (accepted: the product is in service);
2. a bill-run balance event takes the enterprise below its credit limit (star 0: limit 0);
   with the threshold rule on, credit-control decides SUSPEND at once, and the command goes
   through BOSS → EMOS → the industry gateway, which blocks the product;
3. the client keeps sending until a submit is refused (Result 9); then a payment restores
   the product, and the client sends until a submit is accepted again.

The figures come from the database afterwards: the decision's `created_at` (its
transaction's start, so the figure errs long) → the gateway's first refused submit, and the
balance event → that refusal, and the payment → the first accepted submit after it.

The threshold suspension is off in the default rule table (suspensions come from the
calendar's sweeps); the probes turn it on for MAS × their tier in a new rule-table version
and publish the previous rows again as the next version when they are done.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.cmpp.client import CmppClient
from common.contracts import BALANCE_TOPIC
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import to_bytes, wrap
from common.kafka import Publisher

TIER = Tier.HIGH  # the soak's own accounts are mid-tier ADC: the threshold rule is MAS × high
SECRET = "soak-probe"
BILL_MONTH = "2026-10"
REFUSED = 9  # CMPP_SUBMIT_RESP Result: the product is blocked at the gateway


@dataclass
class Probe:
    run: str
    k: int
    refused_at: float | None = None
    accepted_again_at: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def account(self) -> str:
        return f"soakgw-{self.run}-{self.k}"

    @property
    def product(self) -> str:
        return f"{self.account}-mas"

    @property
    def source_addr(self) -> str:  # CMPP Source_Addr is 6 octets
        return f"{self.run[:2]}{self.k:04d}"

    def event(self, sequence: int, owing: bool) -> tuple[str, bytes, bytes]:
        now = datetime.now(UTC)
        due = 50_000 if owing else 0
        customer = CustomerSnapshot(
            customer_id=self.account, name="浸泡探针集团", tier=TIER, star_level=0,
            account_manager=Person(name="经理", phone="13900000000"),
            contacts=(Person(name="联系人", phone="13800000000"),))
        event = BalanceChanged(
            account_id=self.account, sequence=sequence,
            cause=BalanceCause.BILL_RUN if owing else BalanceCause.PAYMENT, as_of=now,
            balance_fen=-due, amount_due_fen=due,
            dues=(BillMonthDue(bill_month=BILL_MONTH, amount_due_fen=due),) if owing else (),
            closed_bill_month=BILL_MONTH if owing else None, customer=customer,
            products=(ProductSnapshot(product_id=self.product, cpno=f"CP{self.account}",
                                      name="企业信息机", family=ProductFamily.MAS,
                                      vendor="huawei"),))
        env = wrap(event, key=self.account, source="soak", occurred_at=now)
        return BALANCE_TOPIC, self.account.encode(), to_bytes(env)


# --- the rule table -------------------------------------------------------------------------

async def _rows_in_force(db: AsyncEngine) -> list[dict[str, Any]]:
    from credit_control.credit.domain.rule_table import DEFAULT_RULES
    async with db.connect() as conn:
        rows = await conn.scalar(text(
            "SELECT rows FROM credit.rule_tables ORDER BY version DESC LIMIT 1"))
    return list(rows) if rows else [r.model_dump(mode="json") for r in DEFAULT_RULES.rows]


async def _publish_rows(db: AsyncEngine, rows: list[dict[str, Any]], reason: str) -> None:
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO credit.rule_tables (version, rows, changed_by, reason, changed_at) "
            "SELECT coalesce(max(version), 1) + 1, CAST(:rows AS jsonb), 'soak', :reason, "
            "now() FROM credit.rule_tables"), {"rows": json.dumps(rows), "reason": reason})


@contextlib.asynccontextmanager
async def threshold_on(db: AsyncEngine) -> Any:
    before = await _rows_in_force(db)
    on = [{**r, "enabled": True} if r["trigger"] == "threshold" and r["family"] == "MAS"
          and r["tier"] == TIER.value else r for r in before]
    await _publish_rows(db, on, "soak: threshold suspension on for MAS × high (probes)")
    try:
        yield
    finally:
        await _publish_rows(db, before, "soak: the rows in force before the probes")


# --- the probes -----------------------------------------------------------------------------

async def register(db: AsyncEngine, probes: list[Probe]) -> None:
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO gateway.cmpp_accounts (source_addr, shared_secret, product_id, "
            "max_connections, max_rate_per_s, updated_at) "
            "SELECT s, :secret, p, 2, 10000, now() FROM unnest(CAST(:s AS text[]), "
            "CAST(:p AS text[])) AS x(s, p) ON CONFLICT (source_addr) DO UPDATE SET "
            "product_id = excluded.product_id, shared_secret = excluded.shared_secret"),
            {"secret": SECRET, "s": [p.source_addr for p in probes],
             "p": [p.product for p in probes]})


async def _send_until(client: CmppClient, want: int, interval: float, timeout: float
                      ) -> float | None:
    """Submit every `interval` s until a submit's result is `want`; the moment it came."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        tick = time.perf_counter()
        (resp,) = await client.submit(["13800138000"], "会议通知")
        if resp.result == want:
            return time.time()
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))
    return None


async def run_probe(probe: Probe, port: int, publisher: Publisher, interval: float,
                    timeout: float) -> None:
    try:
        client = await CmppClient.connect("127.0.0.1", port, probe.source_addr, SECRET,
                                          timeout=10)
    except Exception as exc:  # a probe that cannot log in is reported, not fatal
        probe.errors.append(f"login: {exc!r}")
        return
    try:
        if await _send_until(client, 0, interval, 5) is None:
            probe.errors.append("never accepted before its suspension")
            return
        await publisher.send_many([probe.event(1, owing=True)])
        probe.refused_at = await _send_until(client, REFUSED, interval, timeout)
        if probe.refused_at is None:
            probe.errors.append(f"not refused within {timeout} s of its suspension")
        await publisher.send_many([probe.event(2, owing=False)])
        probe.accepted_again_at = await _send_until(client, 0, interval, timeout)
        if probe.accepted_again_at is None:
            probe.errors.append(f"not accepted within {timeout} s of its payment")
    except Exception as exc:
        probe.errors.append(repr(exc))
    finally:
        await client.terminate()


async def run_probes(bootstrap: str, port: int, probes: list[Probe], every: float,
                     interval: float, timeout: float, stop: asyncio.Event) -> None:
    """One probe every `every` s (the first after one period), until `stop` or the last."""
    publisher = Publisher(bootstrap, "soak-probes")
    await publisher.start()
    running: list[asyncio.Task[None]] = []
    try:
        for probe in probes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                break
            running.append(asyncio.create_task(
                run_probe(probe, port, publisher, interval, timeout)))
        await asyncio.gather(*running)
    finally:
        await publisher.stop()


async def latencies(db: AsyncEngine, probes: list[Probe],
                    percentiles: Callable[[list[float]], dict[str, float]]) -> dict[str, Any]:
    """Per probe from the database: balance event → suspension decision → first refused
    submit; payment → restore decision → first accepted submit after it (ms)."""
    done = [p for p in probes if p.refused_at is not None]
    async with db.connect() as conn:
        rows = (await conn.execute(text("""
            SELECT d.product_id,
                   extract(epoch FROM d.created_at - d.as_of) * 1000 AS event_to_decision,
                   extract(epoch FROM s.submitted_at - d.created_at) * 1000 AS decision_to_refused,
                   extract(epoch FROM s.submitted_at - d.as_of) * 1000 AS event_to_refused,
                   extract(epoch FROM a.submitted_at - r.as_of) * 1000 AS payment_to_accepted
            FROM credit.decisions d
            CROSS JOIN LATERAL (SELECT submitted_at FROM gateway.submits
                                WHERE product_id = d.product_id AND NOT accepted
                                ORDER BY submit_id LIMIT 1) s
            LEFT JOIN credit.decisions r ON r.product_id = d.product_id
                                        AND r.decision = 'restore'
            LEFT JOIN LATERAL (SELECT submitted_at FROM gateway.submits
                               WHERE product_id = d.product_id AND accepted
                                 AND submitted_at > s.submitted_at
                               ORDER BY submit_id LIMIT 1) a ON true
            WHERE d.product_id = ANY(:p) AND d.decision = 'suspend'"""),
            {"p": [p.product for p in done]})).all()
    out: dict[str, Any] = {}
    for name in ("event_to_decision", "decision_to_refused", "event_to_refused",
                 "payment_to_accepted"):
        out[f"probe_{name}_ms"] = percentiles(sorted(
            float(getattr(r, name)) for r in rows if getattr(r, name) is not None))
    out["probes"] = len(probes)
    out["probes_measured"] = len(rows)
    out["probe_errors"] = {p.account: p.errors for p in probes if p.errors}
    return out
