"""What staff change through the API: rule table, credit profiles, red list and emergency
exemptions, the guard. Every change is validated first (4xx, nothing written) and audited:
who, when, old → new."""

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date, ensure_aware
from common.contracts.credit_control import CreditState, ExemptionChanged
from common.contracts.gateway import ProvisioningAction
from common.contracts.reconciliation import DesiredChainPage, DesiredChainState
from common.contracts.snapshots import ProductFamily
from common.errors import Conflict, NotFound, Unprocessable

from ...credit.adapters import repository as repo
from ...credit.domain.commands import (
    GUARD_FIELDS,
    AddExemption,
    ExemptionKind,
    PutGuard,
    PutProfile,
    PutRules,
)
from ...credit.domain.ladder import UNHEARD, Notice, heard_as_of, unheard_limit
from ...credit.domain.product_credit import SUSPENDED_AT_CHAIN
from ...credit.domain.profiles import limit_in_range
from ...credit.domain.rule_table import RuleTable
from ...credit.service_layer import reviews
from ...credit.service_layer.reconsider import reconsider_customers
from ...credit.service_layer.sweeps import guard_settings
from ...service_layer.context import CreditContext, publish
from ..adapters import admin_repository as admin_repo
from .customers import require_known_customer


async def get_rules(ctx: CreditContext) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        table, row = await admin_repo.rule_table(conn)
    return {"version": table.version, "rows": [r.model_dump(mode="json") for r in table.rows],
            "changed_by": row.changed_by if row else "seed defaults",
            "changed_at": row.changed_at if row else None, "reason": row.reason if row else None}


async def put_rules(ctx: CreditContext, cmd: PutRules) -> dict[str, Any]:
    async with ctx.engine.begin() as conn:
        current, _ = await admin_repo.rule_table(conn)
        if cmd.expected_version != current.version:
            raise Conflict(f"the rule table is at version {current.version}, not "
                           f"{cmd.expected_version}", version=current.version)
        try:
            new = RuleTable(version=current.version + 1, rows=cmd.rows)
        except ValidationError as exc:
            raise Unprocessable("the rule table is not valid", problems=[
                str(e["msg"]) for e in exc.errors()]) from None
        now = ctx.clock.now()
        if current.version == 1 and not await _stored_defaults(conn):
            await admin_repo.store_rule_table(conn, current, "seed defaults", "defaults", now)
        if not await admin_repo.store_rule_table(conn, new, cmd.changed_by, cmd.reason, now):
            raise Conflict("someone changed the rule table at the same moment")
        before, after = _diff(current, new)
        await admin_repo.audit(conn, now, cmd.changed_by, "rule_table", str(new.version), "put",
                               before, after)
    ctx.rules.table = None
    return await get_rules(ctx)


async def _stored_defaults(conn: Any) -> bool:
    _, row = await admin_repo.rule_table(conn)
    return row is not None


def _diff(before: RuleTable, after: RuleTable) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the rows that changed: old → new, by rule id."""
    a = {r.rule_id: r.model_dump(mode="json") for r in before.rows}
    b = {r.rule_id: r.model_dump(mode="json") for r in after.rows}
    changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return ({"version": before.version, "rows": {k: a.get(k) for k in changed}},
            {"version": after.version, "rows": {k: b.get(k) for k in changed}})


# --- profiles -------------------------------------------------------------------------------

async def put_profile(ctx: CreditContext, customer_id: str, cmd: PutProfile) -> dict[str, Any]:
    if cmd.credit_limit_fen is not None and not limit_in_range(cmd.star_level,
                                                               cmd.credit_limit_fen):
        raise Unprocessable(f"credit limit {cmd.credit_limit_fen} fen is outside the range of "
                            f"star level {cmd.star_level} (seed 004)", field="credit_limit_fen")
    now = ctx.clock.now()
    at = ensure_aware(cmd.as_of) if cmd.as_of is not None else now
    async with ctx.engine.begin() as conn:
        old = await admin_repo.profile_row(conn, customer_id)
        values = {"customer_id": customer_id, "star_level": cmd.star_level,
                  "credit_limit_fen": cmd.credit_limit_fen, "updated_by": cmd.changed_by,
                  "updated_at": now}
        await admin_repo.upsert_profile(conn, values)
        before = _profile_json(old._mapping if old else None)
        await admin_repo.audit(conn, now, cmd.changed_by, "credit_profile", customer_id, "put",
                               before, _profile_json(values))
        if before != _profile_json(values):
            # As a limit or star changed by billing's master data would: the products'
            # ladders and states against the new limit (credit/service_layer/reconsider.py).
            await reconsider_customers(ctx, conn, [customer_id], at, trigger="credit profile",
                                       correlation=f"profile:{customer_id}:{at.isoformat()}")
    return await get_profile(ctx, customer_id)


def _profile_json(values: Any) -> dict[str, Any] | None:
    if values is None:
        return None
    return {"star_level": values["star_level"], "credit_limit_fen": values["credit_limit_fen"]}


async def get_profile(ctx: CreditContext, customer_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        profile = (await admin_repo.profiles_for(conn, [customer_id]))[customer_id]
        row = await admin_repo.profile_row(conn, customer_id)
    now = ctx.clock.now()
    return {"customer_id": customer_id, "star_level": profile.star_level,
            "credit_limit_fen": profile.limit_fen(None) if profile.star_level is not None
            or profile.credit_limit_fen is not None else None,
            "updated_by": row.updated_by if row else None,
            "updated_at": row.updated_at if row else None,
            "suspension_exempt": profile.suspension_exempt(now)}


# --- exemptions -----------------------------------------------------------------------------

async def add_exemption(ctx: CreditContext, cmd: AddExemption) -> dict[str, Any]:
    now = ctx.clock.now()
    if cmd.kind is ExemptionKind.EMERGENCY and cmd.until is None:
        raise Unprocessable("emergency no-suspension is time-boxed: give `until`", field="until")
    if cmd.until is not None and cmd.until <= now:
        raise Unprocessable("`until` is in the past", field="until")
    values = {**cmd.model_dump(), "kind": cmd.kind.value, "created_at": now}
    await require_known_customer(ctx, cmd.customer_id)
    async with ctx.engine.begin() as conn:
        # One change of the customer's exemptions at a time (an expiry announced meanwhile
        # must not be published after this one, saying the opposite).
        await admin_repo.lock_customers(conn, [cmd.customer_id])
        if not await admin_repo.add_exemption(conn, values):
            earlier = await admin_repo.exemption(conn, cmd.exemption_id)
            assert earlier is not None
            asked = cmd.model_dump() | {"kind": cmd.kind.value}
            if {k: earlier._mapping[k] for k in asked} != asked:
                raise Conflict(f"exemption {cmd.exemption_id} exists with other values",
                               id=cmd.exemption_id)
            return {**earlier._mapping,
                    "reviews": await reviews.of_exemption(conn, cmd.exemption_id)}
        await admin_repo.audit(conn, now, cmd.created_by, cmd.kind.value, cmd.customer_id, "add",
                               None, cmd.model_dump(mode="json"))
        # A product sanctioned before the exemption stays so until a credit-admin decides.
        opened = await reviews.open_for_exemption(ctx, conn, values, cmd.created_by, now)
        await announce_exemption(ctx, conn, cmd.customer_id, cmd.exemption_id, now)
        row = await admin_repo.exemption(conn, cmd.exemption_id)
    assert row is not None
    return {**row._mapping, "reviews": opened}  # a replay answers the same ids


async def announce_exemption(ctx: CreditContext, conn: AsyncConnection, customer_id: str,
                             exemption_id: str, at: datetime) -> None:
    """Each product of the customer: whether it is exempt now (`credit.exemption_changed`),
    so a suspension warning waiting to leave is not sent once no suspension will follow,
    and a third warning waiting leaves without its threat (the notifier's re-check and
    revision, docs/notifier.md "No empty threats"). An exemption that runs out at its
    `until` is announced by the expiry job (service_layer/expiries.py), a red-list entry
    not renewed by its review date by the lapse (collections/, red_list_review.py). The
    caller holds the customer's lock (`admin_repo.lock_customers`)."""
    profile = (await admin_repo.profiles_for(conn, [customer_id]))[customer_id]
    exempt = profile.suspension_exempt(at)
    for row in await admin_repo.products_of_customer(conn, customer_id):
        await publish(ctx, conn, row.account_id, ExemptionChanged(
            account_id=row.account_id, product_id=row.product_id, customer_id=customer_id,
            exemption_id=exemption_id, as_of=at, suspension_exempt=exempt))


async def remove_exemption(ctx: CreditContext, exemption_id: str, by: str) -> dict[str, Any]:
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = await admin_repo.exemption(conn, exemption_id)
        if row is None:
            raise NotFound(f"unknown exemption {exemption_id!r}", id=exemption_id)
        # As adding one: the customer's exemptions change one transaction at a time; read
        # again under the lock (removed meanwhile: removed once).
        await admin_repo.lock_customers(conn, [row.customer_id])
        row = await admin_repo.exemption(conn, exemption_id)
        assert row is not None
        if row.removed_at is None:
            await admin_repo.remove_exemption(conn, exemption_id, by, now)
            await admin_repo.audit(conn, now, by, row.kind, row.customer_id, "remove",
                                   {"exemption_id": exemption_id}, None)
            await announce_exemption(ctx, conn, row.customer_id, exemption_id, now)
        row = await admin_repo.exemption(conn, exemption_id)
    assert row is not None
    return dict(row._mapping)


# --- guard ----------------------------------------------------------------------------------

async def put_guard(ctx: CreditContext, cmd: PutGuard) -> dict[str, Any]:
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        # Two PUTs of different fields in turn, each merged into the other's result (read
        # and written in one transaction, under a lock: the row may not exist yet).
        await admin_repo.lock_guard(conn)
        old = await guard_settings(ctx, conn)
        new = cmd.applied_to(old)
        await admin_repo.store_guard(conn, {**new, "updated_by": cmd.changed_by,
                                            "updated_at": now})
        # What took effect, not what was sent: a field left out is its old value.
        await admin_repo.audit(conn, now, cmd.changed_by, "guard", "1", "put",
                               {k: old[k] for k in GUARD_FIELDS}, new)
    return await guard_settings(ctx)


# --- reads ----------------------------------------------------------------------------------

async def desired(ctx: CreditContext, after: str | None, limit: int) -> DesiredChainPage:
    async with ctx.engine.connect() as conn:
        rows = await repo.desired_page(conn, after, limit)
    items = tuple(DesiredChainState(
        product_id=r.product_id, account_id=r.account_id, customer_id=r.customer_id or "",
        cpno=r.product["cpno"], family=ProductFamily(r.family), vendor=r.product.get("vendor"),
        # A row's state is a str; CreditState members are StrEnums, equal to (and hashed
        # as) their values, so the domain's set answers for it.
        desired=ProvisioningAction.SUSPEND if r.state in SUSPENDED_AT_CHAIN
        else ProvisioningAction.RESTORE,
        sequence=int(r.command_seq), since=r.command_at, sent_at=r.command_sent_at)
        for r in rows)
    return DesiredChainPage(items=items,
                            next_after=items[-1].product_id if len(items) == limit else None)


async def product_credit(ctx: CreditContext, product_id: str,
                         as_of: datetime | None = None) -> dict[str, Any]:
    """Explain: the state and every decision with its rule, inputs and before → after.
    Exemptions are those active `as_of` (default now), the moment a sweep would judge."""
    at = ensure_aware(as_of) if as_of is not None else ctx.clock.now()
    # one snapshot: the state, its history and the work orders agree with each other
    async with ctx.engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        product = await repo.product(conn, product_id)
        if product is None:
            raise NotFound(f"unknown product {product_id!r}", id=product_id)
        orders = await admin_repo.work_orders(conn, {"product_id": product_id}, None, 1000)
        profile = (await admin_repo.profiles_for(conn, [product.customer_id]))[
            product.customer_id] if product.customer_id else None
        history = await repo.history(conn, product_id)
        # Reconciliation's repairs (credit/service_layer/chain_repairs.py): commands with no
        # decision of their own, so not in the history; newest first.
        repairs = await admin_repo.audit_entries(conn, "chain_repair", product_id, 100)
    return {
        "product_id": product_id, "account_id": product.account_id,
        "customer_id": product.customer_id, "family": product.family, "state": product.state,
        "warning_level": product.warning_level, "state_changed_at": product.state_changed_at,
        # The arrears ladder of this cycle (credit/domain/ladder.py): where notice stands.
        "ladder": {"month": product.ladder_month, "warning_level": product.warning_level,
                   "suspension_warned_on": product.suspension_warned_on,
                   "suspension_deadline": product.suspension_deadline,
                   **_suspension_warning(ctx, product, at)},
        "facts": {"tier": product.tier, "star_level": product.star_level,
                  "balance_fen": product.balance_fen, "amount_due_fen": product.amount_due_fen,
                  "product_amount_due_fen": product.product_amount_due_fen,
                  "oldest_due_month": product.oldest_due_month,
                  "credit_limit_fen": profile.limit_fen(product.star_level) if profile else 0},
        "exemptions_as_of": at.isoformat(),
        "exemptions": [e.__dict__ for e in profile.active_exemptions(at)] if profile else [],
        "pending_command_id": product.pending_command_id,
        "command": {"sequence": product.command_seq, "action": product.command_action,
                    "attempt": product.command_attempt, "retry_at": product.retry_at},
        "pending_work_order_id": product.pending_work_order_id,
        **history, "work_orders": orders,
        "chain_repairs": [{"at": r["at"], "by": r["actor"], "asked": r["old"], "sent": r["new"]}
                          for r in repairs],
    }


def _suspension_warning(ctx: CreditContext, product: Any, at: datetime) -> dict[str, Any]:
    """The ladder's suspension warning and what became of its SMS (notifier.notices.v1). A
    ladder with none (never warned of suspension, or restarted: paid, a new oldest month)
    has no notice: the row's notice columns still hold the last ladder's until the next
    suspension warning resets them (the sweep carries the counts only while a deadline
    stands: sweep_sql `upd`), so they are not shown as this ladder's (QA pass 34)."""
    if product.suspension_deadline is None:
        return {"suspension_warning_id": None, "notice": {
            "status": None, "sent_at": None, "delivered_at": None, "reason": None,
            "permanent": False, "notice_days": None, "lost_warnings": 0,
            "withdrawn_warnings": 0, "unheard_lost_on": None, "unheard": False}}
    return {"suspension_warning_id": product.suspension_warning_id,
            "notice": {"status": product.notice_status,
                       "sent_at": product.notice_sent_at,
                       "delivered_at": product.notice_delivered_at,
                       "reason": product.notice_reason,
                       "permanent": product.notice_permanent,
                       "notice_days": product.notice_days,
                       "lost_warnings": product.notice_failures,
                       # withdrawn at send time (cancelled: its reason went), owed again
                       # but not toward max_warnings (docs/rules.md)
                       "withdrawn_warnings": product.notice_withdrawals,
                       # ladder.heard_as_of on the business day of `as_of`: the day an
                       # unheard warning counts as lost, and whether it has come
                       **_unheard(ctx, product, at)}}


def _unheard(ctx: CreditContext, product: Any, at: datetime) -> dict[str, Any]:
    """A suspension-warned product's warning not heard of yet: the business day it counts as
    lost (`unheard_lost_on`), and whether the sweep of `at`'s day reads it lost (`unheard`)."""
    policy, deadline = ctx.settings.notice_policy, product.suspension_deadline
    if product.state != CreditState.SUSPENSION_WARNED.value or deadline is None:
        return {"unheard_lost_on": None, "unheard": False}
    sent, delivered = product.notice_sent_at, product.notice_delivered_at
    notice = Notice(product.notice_status, sent and business_date(sent),
                    delivered and business_date(delivered), failures=product.notice_failures,
                    withdrawals=product.notice_withdrawals)
    if notice.lost or notice.reached_on(policy) is not None:
        return {"unheard_lost_on": None, "unheard": False}
    read = heard_as_of(notice, deadline, policy, business_date(at))
    return {"unheard_lost_on": unheard_limit(deadline, policy),
            "unheard": read is not None and read.status == UNHEARD}
