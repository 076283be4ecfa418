"""Preview: what a sweep at a given moment would decide, without deciding it (issue 19).

The preview runs the sweep's own statement (adapters/sweep_sql.py), chunk after chunk, each
in a transaction that reads back the decisions it made and is then rolled back. So it cannot
drift from the sweep: the same rule table, plan, notice policy and criteria, and every
decision id is the one the sweep would give. Like a held sweep, a preview whose suspensions
the mass-suspension guard would hold shows them apart, as held: the sweep would run every
other step first, and the suspensions only once a credit-admin confirms them.

Nothing is written: no decision, state, work order or outbox row survives a chunk, and the
outbox relay is not woken. Locks are taken per chunk for the chunk's short transaction only,
as the sweep takes them. The fingerprint (sha-256 of the sorted decision ids) names the
preview's exact outcome: two previews with the same fingerprint decide the same.

With a renderer (the notifier's template preview, adapters/peers.NoticeRenderer), each listed
decision also carries the SMS it would send: the notifier's templates in force, rendered from
the decision exactly as the sweep would publish it. Only the listed decisions keep their
notice context while the sweep's statement runs, so a preview of a million products holds
no more than `limit` of them.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import BUSINESS_TZ, business_date, ensure_aware
from common.contracts.credit_control import CreditState, DecisionType
from common.errors import ApiError

from ...service_layer.context import CreditContext
from ..adapters import sweep_sql
from ..domain import rules
from ..domain.ladder import first_sending_day

# The decisions of a chunk: the ones this transaction just inserted (created_at is the
# transaction's start, now()), over the chunk's product range (the index on product id).
_MADE = text("""
    SELECT d.decision_id, d.product_id, d.account_id, d.decision, d.rule_id, d.reason,
           d.state_before, d.state_after, d.amount_fen, c.j->>'deadline' AS deadline,
           (c.j->>'amount_due_fen')::bigint AS amount_due_fen,
           pc.family, pc.tier, pc.customer_id, pc.region, pc.product->>'channel' AS channel,
           c.j->'customer'->>'name' AS customer_name,
           c.j->'customer'->'account_manager'->>'name' AS manager_name,
           d.as_of, d.warning_level, d.rule_version,
           CASE WHEN CAST(:with_context AS boolean) THEN d.context END AS context_json
    FROM credit.decisions d JOIN credit.product_credit pc ON pc.product_id = d.product_id
    -- text since 0033, parsed once a row into jsonb for the four reads (a json value is
    -- parsed again by each; OFFSET 0 keeps the planner from copying the cast into each)
    CROSS JOIN LATERAL (SELECT d.context::jsonb AS j OFFSET 0) c
    WHERE d.product_id > :after AND (CAST(:last AS text) IS NULL OR d.product_id <= :last)
      AND d.created_at = now()
    ORDER BY d.product_id, d.decision_id""")


# Renders events' SMS: one list of messages per event ({"decision": CreditDecisionMade body}
# or {"state_change": CreditStateChanged body}), in order.
Render = Callable[[list[dict[str, Any]]], Awaitable[list[list[dict[str, Any]]]]]


async def preview_sweep(ctx: CreditContext, as_of: datetime, limit: int = 100,
                        only: dict[str, str] | None = None,
                        render: Render | None = None) -> dict[str, Any]:
    """What a sweep as of `as_of` would decide now: counts per decision, per family × tier,
    per region, per sales channel and per account manager, the amounts, the guard's verdict
    and the fingerprint, all of the whole sweep; and the first `limit` decisions in product
    order among those matching `only` (e.g. {"account_id": …}, {"decision": "suspend"}),
    with `render` each with the SMS it would send. Nothing is written."""
    as_of = ensure_aware(as_of)
    only = only or {}
    keep = _first_listed(only, limit) if render is not None else None
    version, decided, guard = await outcome(ctx, as_of, keep)
    summary = _summary(as_of, version, decided, guard, limit, only)
    if render is not None:
        await _with_messages(summary, decided, only, limit, render)
    return summary


async def outcome(ctx: CreditContext, as_of: datetime,
                  keep: Callable[[dict[str, Any]], bool] | None = None,
                  ) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
    """The rule version, every decision a sweep as of `as_of` would take now (in product
    order; `held` marks the suspensions the guard would hold), and the guard's verdict.
    `keep`, asked once per decision in that order, says which keep their notice context
    (`context_json`, for rendering their SMS); None: none do."""
    today = business_date(as_of)
    async with ctx.engine.connect() as conn:
        table = await ctx.rules.current(conn)
        await conn.rollback()
    # Its suspension warnings name what the sweep's would (sweeps.sending_day: the notice counts
    # from the day their SMS can first leave).
    sent_on = first_sending_day(as_of, ctx.settings.sending_window)
    plan = list(enumerate(rules.sweep_plan(table, today, ctx.settings.notice_policy,
                                           sent_on)))
    suspends = [(n, s) for n, s in plan if s.row.decision is DecisionType.SUSPEND]
    guard = await _guard(ctx, as_of, suspends, table.version)
    held = guard is not None and guard["held"]
    now = ctx.clock.now()
    passes = [[p for p in plan if p not in suspends], suspends] if held else [plan]
    decided: list[dict[str, Any]] = []
    for n, steps in enumerate(passes):
        for row in await _pass(ctx, steps, as_of, now, table.version, keep is not None):
            row = {**row, "held": held and n == 1}
            if keep is not None and not keep(row):
                row["context_json"] = None
            decided.append(row)
    return table.version, decided, guard


def _first_listed(only: dict[str, str], limit: int) -> Callable[[dict[str, Any]], bool]:
    """True for the first `limit` decisions matching `only`: the ones the summary lists."""
    kept = 0

    def keep(row: dict[str, Any]) -> bool:
        nonlocal kept
        if kept >= limit or not _matches(row, only):
            return False
        kept += 1
        return True

    return keep


def _matches(row: dict[str, Any], only: dict[str, str]) -> bool:
    # A region or channel not recorded is "" in the counts (`by_region`, `by_channel`), so
    # `region=` (empty) lists what they count under "" (QA pass 33).
    return all((row[k] or "") == v for k, v in only.items())


async def _with_messages(summary: dict[str, Any], decided: list[dict[str, Any]],
                         only: dict[str, str], limit: int, render: Render) -> None:
    """Each listed item with the SMS it would send (`sms`), rendered by the notifier, each
    marked `on`: "decision" (sent as the sweep decides) or "suspended" (sent once the
    suspension is confirmed, as the notifier does on the state change). If the notifier
    cannot say, the preview still answers, saying why."""
    listed = [d for d in decided if _matches(d, only)][:limit]
    asks = [(n, on, body) for n, d in enumerate(listed) for on, body in _events_of(d)]
    try:
        rendered = await render([body for _, _, body in asks])
    except ApiError as exc:
        summary["sms_unavailable"] = exc.message
        return
    for item in summary["items"]:
        item["sms"] = []
    for (n, on, _), messages in zip(asks, rendered, strict=True):
        summary["items"][n]["sms"] += [{**m, "on": on} for m in messages]


def _events_of(d: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """What the notifier will hear of this decision: the CreditDecisionMade the sweep would
    publish (as it stores it), and for a suspension the CreditStateChanged that confirms it
    (its SMS, the suspension notice, leaves then)."""
    assert d["context_json"] is not None, "a listed decision keeps its context"
    context = json.loads(d["context_json"])
    decision = {
        "decision_id": d["decision_id"], "account_id": d["account_id"],
        "product_id": d["product_id"], "decision": d["decision"], "rule_id": d["rule_id"],
        "reason": d["reason"], "state_before": d["state_before"],
        "state_after": d["state_after"], "as_of": d["as_of"].isoformat(),
        "context": context, "warning_level": d["warning_level"],
        "amount_fen": d["amount_fen"], "rule_version": d["rule_version"]}
    events = [("decision", {"decision": decision})]
    if d["decision"] == DecisionType.SUSPEND.value:
        suspended = CreditState.SUSPENDED.value
        before = d["state_after"] if d["state_after"] != suspended else d["state_before"]
        events.append(("suspended", {"state_change": {
            "account_id": d["account_id"], "product_id": d["product_id"],
            "decision_id": d["decision_id"], "state_before": before,
            "state_after": suspended, "as_of": d["as_of"].isoformat(),
            "context": context}}))
    return events


def fingerprint(decision_ids: list[str]) -> str:
    """sha-256 of the sorted decision ids: the same outcome, the same fingerprint."""
    return hashlib.sha256("\n".join(sorted(decision_ids)).encode()).hexdigest()


async def _pass(ctx: CreditContext, steps: list[tuple[int, rules.SweepStep]],
                as_of: datetime, now: datetime, version: int,
                with_context: bool) -> list[dict[str, Any]]:
    if not steps:
        return []
    chunk, after, found = ctx.settings.sweep_chunk, "", []
    while True:
        values = sweep_sql.params(
            steps, as_of, now, version, after, chunk, ctx.source, None,
            as_of + timedelta(hours=ctx.settings.work_order_due_hours), business_date(as_of))
        async with ctx.engine.connect() as conn:
            tx = await conn.begin()
            try:
                await sweep_sql.tune_chunk(conn)
                candidates, last_id, _ = await sweep_sql.run_chunk(conn, values)
                found += await _made(conn, after, last_id, with_context)
            finally:
                await tx.rollback()  # a preview decides nothing
        if candidates < chunk or last_id is None:
            return found
        after = last_id


async def _made(conn: AsyncConnection, after: str, last: str | None,
                with_context: bool) -> list[dict[str, Any]]:
    rows = await conn.execute(_MADE, {"after": after, "last": last,
                                      "with_context": with_context})
    return [dict(r._mapping) for r in rows]


async def _guard(ctx: CreditContext, as_of: datetime,
                 suspends: list[tuple[int, rules.SweepStep]],
                 version: int) -> dict[str, Any] | None:
    """The mass-suspension guard's verdict for a sweep at `as_of` (the same numbers the
    sweep's start counts); None when it is off or nothing would be suspended."""
    from .sweeps import guard_settings

    settings = await guard_settings(ctx)
    if not settings["enabled"] or not suspends:
        return None
    async with ctx.engine.connect() as conn:
        await sweep_sql.tune(conn)
        would, active = await sweep_sql.guard_counts(conn, suspends, sweep_sql.params(
            [], as_of, as_of, version, "", 0, ctx.source, None, as_of, business_date(as_of)))
        await conn.rollback()
    held = active >= settings["min_active"] and would > settings["max_share"] * active
    return {"would_suspend": would, "active": active, "max_share": settings["max_share"],
            "held": held}


def _summary(as_of: datetime, version: int, decided: list[dict[str, Any]],
             guard: dict[str, Any] | None, limit: int, only: dict[str, str]) -> dict[str, Any]:
    by_kind: Counter[str] = Counter()
    amounts: Counter[str] = Counter()
    by_family_tier: Counter[str] = Counter()
    by_region: Counter[tuple[str, str]] = Counter()
    by_channel: Counter[tuple[str, str]] = Counter()
    by_manager: Counter[tuple[str, str]] = Counter()
    for d in decided:
        kind = d["decision"] + (" (held)" if d["held"] else "")
        by_kind[kind] += 1
        amounts[kind] += int(d["amount_due_fen"] or 0)
        by_family_tier[f"{d['decision']} {d['family']} {d['tier']}"] += 1
        by_region[(d["region"] or "", d["decision"])] += 1
        by_channel[(d["channel"] or "", d["decision"])] += 1
        by_manager[(d["manager_name"] or "", d["decision"])] += 1
    ids = sorted(d["decision_id"] for d in decided)
    listed = [d for d in decided if _matches(d, only)]
    return {
        "as_of": as_of.astimezone(BUSINESS_TZ).isoformat(),
        "business_date": business_date(as_of).isoformat(),
        "rule_version": version,
        "decisions": dict(sorted(by_kind.items())),
        "amount_due_fen": dict(sorted(amounts.items())),
        "by_family_tier": dict(sorted(by_family_tier.items())),
        # Records like the managers' (a region or channel is free text: "" = none recorded).
        "by_region": [{"region": r, "decision": k, "count": n}
                      for (r, k), n in sorted(by_region.items())],
        "by_channel": [{"channel": c, "decision": k, "count": n}
                       for (c, k), n in sorted(by_channel.items())],
        # Records, not "name decision" keys: a manager's name is personal data, masked by
        # common.pii for callers who may not see it (it looks for `manager_name`).
        "by_account_manager": [{"manager_name": m, "decision": k, "count": n}
                               for (m, k), n in sorted(by_manager.items())],
        "guard": guard,
        "fingerprint": fingerprint(ids),
        "total": len(decided),
        "matching": len(listed),
        "shown": min(limit, len(listed)),
        "items": [_item(d) for d in listed[:limit]],
    }


def _item(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in (
        "decision_id", "product_id", "account_id", "customer_id", "customer_name",
        "manager_name", "family", "tier", "region", "channel", "decision", "rule_id", "reason",
        "state_before", "state_after",
        "amount_due_fen", "amount_fen", "deadline", "held")}
