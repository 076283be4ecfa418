"""The balance-event batch path's SQL: a fixed handful of statements per batch, whatever its
size. Every statement takes whole columns as arrays (`INSERT … SELECT FROM unnest(…)`), so
PostgreSQL plans it once and the rows cost no per-row round trip; each runs on the
transaction's asyncpg connection (`common.db.DriverStatement`), without SQLAlchemy's work per
statement and per row. JSON columns go as `bytea[]` of the encoded structs, converted by
PostgreSQL (`convert_from(…, 'UTF8')`): as `text[]` each would be decoded in Python only
for asyncpg to encode it again, and snapshots carry Chinese names (~0.7 µs a few hundred bytes).
Snapshots and contexts are `json` columns (migration 0029), as are a decision's inputs (0030):
checked and kept as they were encoded, not parsed into jsonb; `dues` stay jsonb (the rating
and the sweep take their elements apart).

Lock order is the one everyone uses: account positions in account id order, then products
in product id order.

The contracts' enums are `StrEnum`s: a member is the str of its value, so columns take
members as they are (`.value` is a Python-level property call per value).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import parse_bill_month
from common.contracts.billing import BalanceChanged
from common.contracts.gateway import ProvisioningCommand
from common.contracts.snapshots import ProductSnapshot
from common.db import DriverStatement
from common.envelope import Envelope, encode

from ..domain.product_amount import product_amount_due
from ..domain.product_credit import ProductCredit, WorkOrderRequest
from .product_credits import COLUMNS, N_COLUMNS

# An account's applied position as the batch found it: (its newest sequence, what it owed
# then). A plain tuple: one per account of every batch.
Position = tuple[int, int]


# An account's position moves to the batch's newest event in one statement, which also
# answers what the position was before: the update keeps the row's previous sequence and
# debt beside the new ones (`previous_*`, migration 0032) and returns them, from the row it
# locked. So the batch's first statement both locks its accounts' positions (account id
# order, everyone's lock order) and writes them; a separate `SELECT … FOR UPDATE` first was
# a statement and a row lock of its own an account, then the same rows written again.
# A position at or past the batch's newest event is locked (ON CONFLICT locks the rows its
# WHERE leaves alone) and neither written nor returned: its events are all stale.
_ADVANCE_POSITIONS = DriverStatement("""
    INSERT INTO credit.account_positions (account_id, sequence, balance_fen, amount_due_fen,
        dues, customer, cause, as_of, deposit_fen)
    SELECT u.account_id, u.sequence, u.balance_fen, u.amount_due_fen,
           convert_from(u.dues, 'UTF8')::jsonb, convert_from(u.customer, 'UTF8')::json,
           u.cause, u.as_of, u.deposit_fen
    FROM unnest(CAST(:account_id AS text[]), CAST(:sequence AS bigint[]),
                CAST(:balance_fen AS bigint[]), CAST(:amount_due_fen AS bigint[]),
                CAST(:dues AS bytea[]), CAST(:customer AS bytea[]), CAST(:cause AS text[]),
                CAST(:as_of AS timestamptz[]), CAST(:deposit_fen AS bigint[]))
         AS u(account_id, sequence, balance_fen, amount_due_fen, dues, customer, cause, as_of,
              deposit_fen)
    ORDER BY u.account_id
    ON CONFLICT (account_id) DO UPDATE SET
        previous_sequence = account_positions.sequence,
        previous_amount_due_fen = account_positions.amount_due_fen,
        sequence = excluded.sequence, balance_fen = excluded.balance_fen,
        amount_due_fen = excluded.amount_due_fen, dues = excluded.dues,
        customer = excluded.customer, cause = excluded.cause, as_of = excluded.as_of,
        deposit_fen = excluded.deposit_fen
    WHERE account_positions.sequence < excluded.sequence
    RETURNING account_id, previous_sequence, previous_amount_due_fen""")


async def advance_positions(
    conn: AsyncConnection, newest: list[BalanceChanged]
) -> dict[str, Position | None]:
    """Each account's position moved to its event in `newest` (one event per account, the
    batch's newest) where that is newer, the rows locked in account id order. Returns the
    accounts whose position moved, each with the position it had before (None: it had
    none); an account left out was at or past its event already."""
    ordered = sorted(newest, key=lambda e: e.account_id)
    rows = await _ADVANCE_POSITIONS.fetch(conn, {
        "account_id": [e.account_id for e in ordered],
        "sequence": [e.sequence for e in ordered],
        "balance_fen": [e.balance_fen for e in ordered],
        "amount_due_fen": [e.amount_due_fen for e in ordered],
        "dues": [encode(e.dues) for e in ordered],
        "customer": [encode(e.customer) for e in ordered],
        "cause": [e.cause for e in ordered],
        "as_of": [e.as_of for e in ordered],
        "deposit_fen": [e.deposit_fen for e in ordered],
    })
    return {a: None if seq is None else (seq, due) for a, seq, due in rows}


def oldest_due_month(event: BalanceChanged) -> date | None:
    if not event.dues:
        return None
    month = event.dues[0].bill_month
    found = _MONTHS.get(month)
    if found is None:
        found = _MONTHS[month] = parse_bill_month(month)
    return found


# Bill months parsed once per process: a few dozen distinct ones, asked for by every event
# (twice: the product's facts and the rules').
_MONTHS: dict[str, date] = {}


# --- a product's own amount (domain/product_amount.py) -------------------------------------
# domain.product_amount.product_owes in a sweep's WHERE (alias pc = credit.product_credit).
PRODUCT_OWES_SQL = "pc.product_amount_due_fen > 0"


# The tier: the rating's when the customer was rated (credit_profiles.tier, docs/rating.md),
# else billing's snapshot; so a sweep's product_credit.tier agrees with the balance path.
# The family follows the product's master data (an ADC product changed to MAS is suspended
# through the chain from then on, QA pass 32) while nothing is sanctioned or in flight: a
# product suspended one way is restored the same way (billing refuses a family change under
# a sanction as far as it has heard; this keeps a change racing a suspension from splitting
# the two).
_UPSERT_PRODUCTS = DriverStatement("""
    INSERT INTO credit.product_credit (product_id, account_id, family, product, state,
        state_changed_at, customer_id, tier, star_level, balance_fen, amount_due_fen,
        oldest_due_month, ladder_month, product_amount_due_fen, region)
    SELECT u.product_id, u.account_id, u.family, convert_from(u.product, 'UTF8')::json,
           'normal', u.as_of,
           u.customer_id, coalesce((SELECT cp.tier FROM credit.credit_profiles cp
                      WHERE cp.customer_id = u.customer_id), u.tier),
           u.star_level, u.balance_fen, u.amount_due_fen, u.oldest, u.oldest, u.own_due,
           u.region
    FROM unnest(CAST(:product_id AS text[]), CAST(:account_id AS text[]),
                CAST(:family AS text[]), CAST(:product AS bytea[]),
                CAST(:as_of AS timestamptz[]), CAST(:customer_id AS text[]),
                CAST(:tier AS text[]), CAST(:star_level AS integer[]),
                CAST(:balance_fen AS bigint[]), CAST(:amount_due_fen AS bigint[]),
                CAST(:oldest AS date[]), CAST(:own_due AS bigint[]),
                CAST(:region AS text[]))
         AS u(product_id, account_id, family, product, as_of, customer_id, tier, star_level,
              balance_fen, amount_due_fen, oldest, own_due, region)
    ORDER BY u.product_id
    ON CONFLICT (product_id) DO UPDATE SET product = excluded.product,
        family = CASE WHEN product_credit.state IN ('normal', 'warned', 'suspension_warned')
                      AND product_credit.pending_command_id IS NULL
                      THEN excluded.family ELSE product_credit.family END,
        account_id = excluded.account_id, customer_id = excluded.customer_id,
        tier = excluded.tier, star_level = excluded.star_level,
        balance_fen = excluded.balance_fen, amount_due_fen = excluded.amount_due_fen,
        oldest_due_month = excluded.oldest_due_month,
        previous_product_amount_due_fen = product_credit.product_amount_due_fen,
        product_amount_due_fen = excluded.product_amount_due_fen, region = excluded.region
    RETURNING """ + COLUMNS + """,
        previous_product_amount_due_fen,
        (SELECT coalesce(max(version), 1) FROM credit.rule_tables),
        EXISTS (SELECT 1 FROM credit.freezes WHERE ended_at IS NULL),
        EXISTS (SELECT 1 FROM credit.promises WHERE status = 'open'
                AND account_id = ANY(CAST(:account_id AS text[]))),
        EXISTS (SELECT 1 FROM credit.credit_profiles
                WHERE customer_id = ANY(CAST(:customer_id AS text[])))
        OR EXISTS (SELECT 1 FROM credit.exemptions WHERE removed_at IS NULL
                   AND customer_id = ANY(CAST(:customer_id AS text[])))""")


# Where an upserted row says what its product owed of its own before the upsert.
OWN_DUE_BEFORE = N_COLUMNS


@dataclass(frozen=True)
class BatchHints:
    """What the rest of the batch's reads would find, asked in the products' upsert (each
    uncorrelated subquery runs once per statement): the rule table's version, whether any
    freeze is open, whether the batch's accounts (`accounts`) have an open promise, whether
    its customers (`customers`) have a credit profile or an exemption. Each of those reads is
    a round trip of its own (~130 µs of the consumer's CPU and a statement of the server's),
    and most batches would find nothing: the store skips a read its hint answers (nothing
    there, for the same accounts and customers), and makes it otherwise.

    The hints are as of the upsert's snapshot, a few milliseconds before the reads they
    stand in for; nothing that writes freezes, promises, profiles or rule tables holds the
    batch's product or position locks, so a write committed in between was as concurrent
    with the batch before as it is now."""

    rule_version: int
    any_freeze: bool
    any_promise: bool
    any_profile: bool
    accounts: frozenset[str]
    customers: frozenset[str]


async def upsert_products(
    conn: AsyncConnection, snapshots: list[tuple[BalanceChanged, ProductSnapshot]],
    since: Mapping[str, datetime] | None = None,
) -> tuple[list[Any], BatchHints | None]:
    """Fresh snapshots and account facts for the batch's products (one per product; a new
    one starts normal as of `since`, else as of its snapshot's event), in product id order;
    returns the rows (`COLUMNS`, positional, then what the product owed of its own before
    (`OWN_DUE_BEFORE`: None for a new one), then the hints' four columns), locked, and the
    hints (None without products)."""
    if not snapshots:
        return [], None
    s = sorted(snapshots, key=lambda s: s[1].product_id)
    accounts = [e.account_id for e, _ in s]
    customers = [e.customer.customer_id for e, _ in s]
    rows = await _UPSERT_PRODUCTS.fetch(conn, {
        "product_id": [p.product_id for _, p in s], "account_id": accounts,
        "family": [p.family for _, p in s], "product": [encode(p) for _, p in s],
        "as_of": ([e.as_of for e, _ in s] if since is None
                  else [since.get(p.product_id, e.as_of) for e, p in s]),
        "customer_id": customers,
        "tier": [e.customer.tier for e, _ in s],
        "star_level": [e.customer.star_level for e, _ in s],
        "balance_fen": [e.balance_fen for e, _ in s],
        "amount_due_fen": [e.amount_due_fen for e, _ in s],
        "oldest": [oldest_due_month(e) for e, _ in s],
        "own_due": [product_amount_due(e, p.product_id) for e, p in s],
        "region": [e.customer.region for e, _ in s],
    })
    n = OWN_DUE_BEFORE + 1
    first = rows[0]
    return rows, BatchHints(first[n], first[n + 1], first[n + 2], first[n + 3],
                            frozenset(accounts), frozenset(customers))


_TAKEN = DriverStatement("""
    SELECT decision_id FROM credit.decisions WHERE decision_id = ANY(CAST(:ids AS text[]))""")


async def taken_decisions(conn: AsyncConnection, decision_ids: list[str]) -> set[str]:
    """Which of these decisions were already taken (decision ids are deterministic)."""
    return {r[0] for r in await _TAKEN.fetch(conn, {"ids": decision_ids})}



@dataclass
class DecisionRows:
    """The batch's decisions, one list per column, in the order they were taken."""

    decision_id: list[str] = field(default_factory=list)
    product_id: list[str] = field(default_factory=list)
    account_id: list[str] = field(default_factory=list)
    decision: list[str] = field(default_factory=list)
    rule_id: list[str] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)
    state_before: list[str] = field(default_factory=list)
    state_after: list[str] = field(default_factory=list)
    as_of: list[datetime] = field(default_factory=list)
    context: list[bytes] = field(default_factory=list)  # JSON, UTF-8
    inputs: list[bytes] = field(default_factory=list)  # JSON, UTF-8
    warning_level: list[int | None] = field(default_factory=list)
    amount_fen: list[int | None] = field(default_factory=list)
    rule_version: list[int] = field(default_factory=list)


_INSERT_DECISIONS = DriverStatement("""
    INSERT INTO credit.decisions (decision_id, product_id, account_id, decision, rule_id,
        reason, state_before, state_after, as_of, context, inputs, warning_level, amount_fen,
        rule_version)
    SELECT u.decision_id, u.product_id, u.account_id, u.decision, u.rule_id, u.reason,
           u.state_before, u.state_after, u.as_of, convert_from(u.context, 'UTF8'),
           convert_from(u.inputs, 'UTF8'),
           u.warning_level, u.amount_fen, u.rule_version
    FROM unnest(CAST(:decision_id AS text[]), CAST(:product_id AS text[]),
                CAST(:account_id AS text[]), CAST(:decision AS text[]),
                CAST(:rule_id AS text[]), CAST(:reason AS text[]),
                CAST(:state_before AS text[]), CAST(:state_after AS text[]),
                CAST(:as_of AS timestamptz[]), CAST(:context AS bytea[]),
                CAST(:inputs AS bytea[]), CAST(:warning_level AS integer[]),
                CAST(:amount_fen AS bigint[]), CAST(:rule_version AS integer[]))
         WITH ORDINALITY
         AS u(decision_id, product_id, account_id, decision, rule_id, reason, state_before,
              state_after, as_of, context, inputs, warning_level, amount_fen, rule_version, n)
    ORDER BY u.n
    ON CONFLICT DO NOTHING
    RETURNING decision_id""")


async def insert_decisions(conn: AsyncConnection, rows: DecisionRows) -> int:
    """Returns how many were new (a decision already taken conflicts and is skipped)."""
    return len(await _INSERT_DECISIONS.fetch(conn, vars(rows)))


@dataclass
class HistoryRows:
    """Every state change of the batch, in the order it happened."""

    product_id: list[str] = field(default_factory=list)
    state_before: list[str] = field(default_factory=list)
    state_after: list[str] = field(default_factory=list)
    cause: list[str] = field(default_factory=list)
    decision_id: list[str | None] = field(default_factory=list)  # None: a ladder restart
    at: list[datetime] = field(default_factory=list)


_INSERT_HISTORY = DriverStatement("""
    INSERT INTO credit.state_history (product_id, state_before, state_after, cause,
        decision_id, at)
    SELECT u.product_id, u.state_before, u.state_after, u.cause, u.decision_id, u.at
    FROM unnest(CAST(:product_id AS text[]), CAST(:state_before AS text[]),
                CAST(:state_after AS text[]), CAST(:cause AS text[]),
                CAST(:decision_id AS text[]), CAST(:at AS timestamptz[]))
         WITH ORDINALITY AS u(product_id, state_before, state_after, cause, decision_id, at, n)
    ORDER BY u.n""")  # ids follow the order of the changes: the explain endpoint sorts by id


async def insert_history(conn: AsyncConnection, rows: HistoryRows) -> None:
    if rows.product_id:
        await _INSERT_HISTORY.execute(conn, vars(rows))


@dataclass
class BatchWrites:
    """What a batch of balance events writes, in this order: decisions, work orders (and
    the work orders a new chain command supersedes), the products that changed, their state
    history, the outbox rows."""

    decisions: DecisionRows = field(default_factory=DecisionRows)
    work_orders: list[tuple[ProductCredit, WorkOrderRequest]] = field(default_factory=list)
    commands: dict[str, ProvisioningCommand] = field(default_factory=dict)  # the newest
    products: list[ProductCredit] = field(default_factory=list)
    history: HistoryRows = field(default_factory=HistoryRows)
    outbox: list[tuple[str, Envelope[Any]]] = field(default_factory=list)
