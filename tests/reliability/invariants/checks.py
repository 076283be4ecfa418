"""The four invariants, each from the databases and the topics alone.

Scope: ids starting with `prefix` (accounts, products: a test's or a workload's own data);
an empty prefix checks everything on the stack.
"""

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import (
    BALANCE_TOPIC,
    COMMANDS_TOPIC,
    DECISIONS_TOPIC,
    RESULTS_TOPIC,
    BalanceChanged,
    CreditDecisionMade,
    CreditStateChanged,
    DeductionCollected,
    NoticeOutcome,
)
from common.envelope import convert
from credit_control.credit.domain.profiles import CreditProfile, Exemption
from credit_control.credit.domain.rule_table import RuleTable
from notifier.domain.notices import NoticeEvent, notices_for

from .counts import Check
from .replay import Inputs, Replay, SweepRun
from .topics import Message, read_topic

BALANCE = "billing.balance_changed"
OUTCOME = "notifier.notice_outcome"
DECISION = "credit.decision_made"
STATE = "credit.state_changed"
DEDUCTION = "credit.deduction_collected"
CHAIN_FAMILIES = ("MAS", "SMS_DIRECT")


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def _outbox(conn: AsyncConnection, schema: str, event_type: str,
                  prefix: str) -> list[dict[str, Any]]:
    rows = await conn.execute(text(
        f"SELECT event_id::text AS event_id, key, payload FROM {schema}.outbox_messages "
        "WHERE event_type = :t AND key LIKE :p ORDER BY id, position"),
        {"t": event_type, "p": _like(prefix)})
    # a row may hold several messages (common.outbox): the view gives each its own
    return [{"event_id": r.event_id, "key": r.key, **orjson.loads(r.payload)} for r in rows]


def _events_of(messages: list[Message], event_type: str) -> list[dict[str, Any]]:
    return [m.envelope for m in messages
            if m.envelope is not None and m.envelope.get("type") == event_type
            and isinstance(m.envelope.get("payload"), dict)]


# --- 1. balance events ----------------------------------------------------------------------

async def check_balance(conn: AsyncConnection, bootstrap: str, prefix: str) -> Check:
    """Every balance event billing published reached credit-control's inbox once; one event
    id per (account, sequence); every account's newest sequence is credit-control's."""
    c = Check("balance events")
    outbox = await _outbox(conn, "billing", BALANCE, prefix)
    topic = _events_of(await read_topic(bootstrap, BALANCE_TOPIC, prefix), BALANCE)
    ids_by_seq: dict[tuple[str, int], set[str]] = defaultdict(set)
    for e in outbox + topic:
        ids_by_seq[(e["payload"]["account_id"], e["payload"]["sequence"])].add(str(e["event_id"]))
    published = {str(e["event_id"]) for e in outbox}
    on_topic = {str(e["event_id"]) for e in topic}
    applied = set((await conn.execute(text(
        "SELECT event_id::text FROM credit.inbox WHERE consumer = 'credit-control' "
        "AND event_id = ANY(CAST(:ids AS uuid[]))"), {"ids": sorted(published | on_topic)}
    )).scalars())
    c.expected, c.found = len(published | on_topic), len(applied)
    c.flag("lost", len((published | on_topic) - applied), sorted((published | on_topic) - applied))
    twice = [f"{a} seq {s}: {sorted(ids)}" for (a, s), ids in ids_by_seq.items() if len(ids) > 1]
    c.flag("doubled", sum(len(v) - 1 for v in ids_by_seq.values()), twice)
    c.flag("lost", len(published - on_topic), [f"{i} not on the topic"
                                               for i in sorted(published - on_topic)])
    c.flag("wrong", len(on_topic - published), [f"{i} on the topic, never in billing's outbox"
                                                for i in sorted(on_topic - published)])
    behind = (await conn.execute(text(
        "SELECT b.account_id, b.sequence, p.sequence AS applied FROM billing.accounts b "
        "LEFT JOIN credit.account_positions p USING (account_id) "
        "WHERE b.account_id LIKE :p AND b.sequence > 0 "
        "AND p.sequence IS DISTINCT FROM b.sequence"), {"p": _like(prefix)})).all()
    c.flag("lost", len(behind), [f"{r.account_id}: billing seq {r.sequence}, credit {r.applied}"
                                 for r in behind])
    c.notes["on topic (incl. redeliveries)"] = len(topic)
    return c


# --- 2. decisions ---------------------------------------------------------------------------

async def replay_inputs(conn: AsyncConnection, prefix: str) -> Inputs:
    rows = await conn.execute(text(
        "SELECT o.payload, COALESCE(i.applied_at, o.created_at) AS at FROM billing.outbox o "
        "LEFT JOIN credit.inbox i ON i.consumer = 'credit-control' AND i.event_id = o.event_id "
        "WHERE o.event_type = :t AND o.key LIKE :p"), {"t": BALANCE, "p": _like(prefix)})
    events = [(r.at, convert(orjson.loads(r.payload)["payload"], BalanceChanged))
              for r in rows]
    sweeps: list[SweepRun] = []
    for r in await conn.execute(text(
            "SELECT k.created_at, k.response, h.status, h.confirmed_at, "
            "  CASE WHEN s.catch_up THEN s.created_at END AS caught_up_at "
            "FROM credit.idempotency_keys k "
            "LEFT JOIN credit.sweep_holds h ON h.sweep_id = k.key "
            "LEFT JOIN credit.sweep_runs s ON s.sweep_id = k.key "
            "WHERE k.scope = 'sweep' AND k.status_code = 201")):
        as_of = datetime.fromisoformat(r.response["as_of"])
        version = int(r.response["rule_version"])
        # A catch-up's notice counts from when it really ran (docs/rules.md).
        caught_up_at = r.caught_up_at
        sweeps.append(SweepRun(r.created_at, as_of, version, r.response.get("held") is not None,
                               caught_up_at))
        if r.status == "confirmed" and r.confirmed_at is not None:
            sweeps.append(SweepRun(r.confirmed_at, as_of, version, False, caught_up_at))
    tables = {int(r.version): (r.changed_at, RuleTable(version=r.version, rows=r.rows))
              for r in await conn.execute(text(
                  "SELECT version, rows, changed_at FROM credit.rule_tables"))}
    return Inputs(events, sweeps, tables, await _profiles(conn), set((await conn.execute(text(
        "SELECT decision_id FROM credit.work_orders WHERE status = 'done' "
        "AND product_id LIKE :p"), {"p": _like(prefix)})).scalars()),
        await _notice_outcomes(conn, prefix))


async def _notice_outcomes(conn: AsyncConnection,
                           prefix: str) -> list[tuple[datetime, NoticeOutcome]]:
    """What the notifier published of suspension warnings' SMS (its outbox: what
    credit-control consumes, `notifier.notices.v1`), each when credit-control applied it (its
    inbox; not applied yet: when published, as for balance events)."""
    rows = await conn.execute(text(
        "SELECT o.payload, COALESCE(i.applied_at, o.created_at) AS at "
        "FROM notifier.outbox_messages o "
        "LEFT JOIN credit.inbox i ON i.consumer = 'credit-control' AND i.event_id = o.event_id "
        "WHERE o.event_type = :t AND o.key LIKE :p"), {"t": OUTCOME, "p": _like(prefix)})
    return [(r.at, convert(orjson.loads(r.payload)["payload"], NoticeOutcome)) for r in rows]


async def _profiles(conn: AsyncConnection) -> dict[str, CreditProfile]:
    exempt: dict[str, list[Exemption]] = defaultdict(list)
    for r in await conn.execute(text(
            "SELECT customer_id, kind, reason, approver, until FROM credit.exemptions "
            "WHERE removed_at IS NULL")):
        exempt[r.customer_id].append(Exemption(r.kind, r.reason, r.approver, r.until))
    profiles = {r.customer_id: CreditProfile(r.customer_id, r.star_level, r.credit_limit_fen,
                                             tuple(exempt.pop(r.customer_id, [])))
                for r in await conn.execute(text(
                    "SELECT customer_id, star_level, credit_limit_fen "
                    "FROM credit.credit_profiles"))}
    profiles.update({cid: CreditProfile(cid, exemptions=tuple(e)) for cid, e in exempt.items()})
    return profiles


async def check_decisions(conn: AsyncConnection, bootstrap: str, prefix: str) -> Check:
    """The decisions recomputed from the inputs exist once each, and no other; each is in
    credit-control's outbox once and on the topic under one event id."""
    c = Check("decisions")
    inputs = await replay_inputs(conn, prefix)
    expected = Replay(inputs).run()
    actual = {r.decision_id: r for r in await conn.execute(text(
        "SELECT decision_id, product_id, decision, rule_id, as_of FROM credit.decisions "
        "WHERE product_id LIKE :p"), {"p": _like(prefix)})}
    c.expected, c.found = len(expected), len(actual)
    lost = sorted(set(expected) - set(actual))
    c.flag("lost", len(lost), [f"{d} {expected[d].product_id} {expected[d].decision}"
                               for d in lost])
    legit = {(r.product_id, r.decision, r.rule_id, r.as_of)
             for d, r in actual.items() if d in expected}
    extra = [r for d, r in actual.items() if d not in expected]
    copies = [r for r in extra if (r.product_id, r.decision, r.rule_id, r.as_of) in legit]
    c.flag("doubled", len(copies), [f"{r.decision_id} copies {r.product_id} {r.decision}"
                                    for r in copies])
    others = [r for r in extra if r not in copies]
    c.flag("wrong", len(others), [f"{r.decision_id} {r.product_id} {r.decision} {r.rule_id}"
                                  for r in others])
    mismatched = [d for d in set(expected) & set(actual)
                  if expected[d].decision.value != actual[d].decision]
    c.flag("wrong", len(mismatched), mismatched)
    published = Counter(e["payload"]["decision_id"]
                        for e in await _outbox(conn, "credit", DECISION, prefix))
    c.flag("lost", len(set(actual) - set(published)), [f"{d} never in the outbox"
                                                       for d in set(actual) - set(published)])
    c.flag("doubled", sum(n - 1 for n in published.values()),
           [f"{d} in the outbox {n}×" for d, n in published.items() if n > 1])
    topic_ids: dict[str, set[str]] = defaultdict(set)
    for e in _events_of(await read_topic(bootstrap, DECISIONS_TOPIC, prefix), DECISION):
        topic_ids[e["payload"]["decision_id"]].add(str(e["event_id"]))
    c.flag("lost", len(set(published) - set(topic_ids)),
           [f"{d} not on the topic" for d in set(published) - set(topic_ids)])
    c.flag("doubled", sum(len(v) - 1 for v in topic_ids.values()),
           [f"{d} on the topic as {len(v)} events" for d, v in topic_ids.items() if len(v) > 1])
    c.notes["sweeps replayed"] = len(inputs.sweeps)
    c.notes["balance events replayed"] = len(inputs.events)
    return c


# --- 3. SMS ---------------------------------------------------------------------------------

async def check_sms(conn: AsyncConnection, prefix: str) -> Check:
    """One message per (decision, state change or deduction collected, product, recipient,
    template), as the notifier's pure rules say; each sent one reached the SMSC once. (A
    deduction that paid two products is one source with a notice for each.)"""
    c = Check("sms")
    expected: dict[str, str] = {}
    events: list[NoticeEvent] = [
        *(convert(e["payload"], CreditDecisionMade)
          for e in await _outbox(conn, "credit", DECISION, prefix)),
        *(convert(e["payload"], CreditStateChanged)
          for e in await _outbox(conn, "credit", STATE, prefix)),
        *(convert(e["payload"], DeductionCollected)
          for e in await _outbox(conn, "credit", DEDUCTION, prefix))]
    for event in events:
        for n in notices_for(event):
            expected[n.message_id] = n.source_id
    rows = (await conn.execute(text(
        "SELECT message_id, source_id, product_id, recipient, template, text, status "
        "FROM notifier.messages WHERE account_id LIKE :p"), {"p": _like(prefix)})).all()
    found = {r.message_id: r for r in rows}
    c.expected, c.found = len(expected), len(found)
    lost = sorted(set(expected) - set(found))
    c.flag("lost", len(lost), [f"{m} ({expected[m]})" for m in lost])

    def key(r: Any) -> tuple[str, str, str, str]:
        return r.source_id, r.product_id, r.recipient, r.template

    keys = Counter(key(r) for r in rows)
    c.flag("doubled", sum(n - 1 for n in keys.values()),
           [f"{k} {n}×" for k, n in keys.items() if n > 1])
    strays = [m for m in found if m not in expected and keys[key(found[m])] == 1]
    c.flag("wrong", len(strays), strays)
    failed = [m for m, r in found.items() if r.status == "dead_lettered"]
    c.flag("lost", len(failed), [f"{m} dead-lettered, never sent" for m in failed])
    await _smsc(conn, c, list(rows), prefix)
    c.notes.update(Counter(f"status {r.status}" for r in rows))
    return c


async def _smsc(conn: AsyncConnection, c: Check, rows: list[Any], prefix: str) -> None:
    by_text = {(r.recipient, r.text): r.message_id for r in rows}
    smsc = (await conn.execute(text(
        "SELECT s.client_ref, s.recipient, s.text FROM notifier.smsc_received s "
        "WHERE s.client_ref = ANY(:ids) OR (s.recipient, s.text) IN "
        "(SELECT recipient, text FROM notifier.messages WHERE account_id LIKE :p)"),
        {"ids": [r.message_id for r in rows], "p": _like(prefix)})).all()
    refs = Counter(s.client_ref for s in smsc)
    ids = {r.message_id for r in rows}
    copies = [s for s in smsc if s.client_ref not in ids and (s.recipient, s.text) in by_text]
    c.flag("doubled", len(copies) + sum(n - 1 for n in refs.values()),
           [f"SMSC got {by_text[(s.recipient, s.text)]} again as {s.client_ref}" for s in copies])
    sent = {r.message_id for r in rows if r.status in ("submitted", "delivered", "rejected")}
    unsent = sorted(sent - set(refs))
    c.flag("lost", len(unsent), [f"{m} marked sent, the SMSC never got it" for m in unsent])
    c.notes["smsc received"] = len(smsc)


# --- 4. chain -------------------------------------------------------------------------------

async def check_chain(conn: AsyncConnection, prefix: str, gateway_url: str | None,
                      token: str) -> Check:
    """Every MAS / SMS-direct product's gateway block matches credit-control's state; the
    gateway's reconciliation reports no 漏停 / 错停; one result per (command, attempt, stage)."""
    c = Check("chain")
    rows = (await conn.execute(text(
        "SELECT pc.product_id, pc.state, g.gateway_blocked FROM credit.product_credit pc "
        "LEFT JOIN gateway.chain_products g USING (product_id) "
        "WHERE pc.family = ANY(:f) AND pc.product_id LIKE :p"),
        {"f": list(CHAIN_FAMILIES), "p": _like(prefix)})).all()
    c.expected = len(rows)
    in_flight = [r for r in rows if r.state in ("suspend_requested", "restore_requested")]
    settled = [r for r in rows if r not in in_flight]
    blocked = {"suspended", "pre_cancel"}
    missed = [r.product_id for r in settled if r.state in blocked and not r.gateway_blocked]
    wrong = [r.product_id for r in settled if r.state not in blocked and r.gateway_blocked]
    c.found = len(settled) - len(missed) - len(wrong)
    c.flag("lost", len(missed), [f"{p} 漏停: suspended by credit-control, open at the gateway"
                                 for p in missed])
    c.flag("wrong", len(wrong), [f"{p} 错停: normal at credit-control, blocked" for p in wrong])
    c.flag("lost", len(in_flight), [f"{r.product_id} still {r.state}" for r in in_flight])
    results = Counter(
        (e["payload"]["command_id"], e["payload"].get("attempt", 1), e["payload"]["stage"])
        for e in await _outbox(conn, "gateway", "provisioning.result", prefix))
    c.flag("doubled", sum(n - 1 for n in results.values()),
           [f"{k} published {n}×" for k, n in results.items() if n > 1])
    c.notes["results"] = len(results)
    if gateway_url:
        await _reconciliation(c, gateway_url, token, prefix)
    return c


async def _reconciliation(c: Check, url: str, token: str, prefix: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        r = await http.get("/v1/reconciliation", params={"product_prefix": prefix})
    r.raise_for_status()
    report = r.json()
    c.notes["reconciliation compared"] = report["products_compared"]
    c.flag("lost", report["missed_suspensions"], [f"reconciliation 漏停 {d['product_id']}"
                                                  for d in report["differences"]
                                                  if d["kind"] == "missed_suspension"])
    c.flag("wrong", report["wrong_suspensions"], [f"reconciliation 错停 {d['product_id']}"
                                                  for d in report["differences"]
                                                  if d["kind"] == "wrong_suspension"])


TOPICS = (BALANCE_TOPIC, DECISIONS_TOPIC, COMMANDS_TOPIC, RESULTS_TOPIC)
