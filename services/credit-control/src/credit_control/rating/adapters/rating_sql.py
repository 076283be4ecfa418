"""The rating model's SQL: inputs recorded from billing's events, the set-based read of every
candidate's inputs, the writes of a run (one statement per table), scorecards, overrides."""

from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date
from common.contracts.billing import BalanceCause, BalanceChanged
from common.db import DriverStatement

from ..domain.model import Rating, RatingInputs
from ..domain.scorecard import DEFAULT_SCORECARD, Scorecard
from . import rating_tables as r

# --- inputs, from the balance events credit-control consumes ------------------------------


_WRITTEN_OFF = "bad debt written off (核销)"


# The batch's rating inputs in ONE statement (one round trip, one parse on the balance path):
# arrears episodes moved then opened (each data-modifying CTE sees the statement's snapshot:
# an episode the first closes is for an account that owes nothing, which the second never
# opens; an account with an episode open already conflicts on the partial unique index of
# migration 0025, one probe per row, where a `NOT EXISTS` was planned, on statistics not yet
# gathered, as an anti join comparing every row with every open episode), the customers'
# inputs (newest event wins), the bills. A row is rewritten only when it changes (a peak that
# grows, an episode that closes, a customer's new brand, open date or blacklisting): most
# balance events change none, and each rewrite was a dead tuple and WAL on the hot path.
# `updated_at` is when a customer's inputs last changed. The episodes to move (`mv`) are only
# the accounts that may move one (`_may_move`): most events change no open episode, and
# joining every open episode to the whole batch was a hash of all of them per batch. An
# account's events in one batch are one stretch: its peak is the most the account owed along
# them (`peak`), whether it owes now is its newest event's (`mdue`; only accounts that owe
# now and owed nothing before are offered an episode to open, `ep`). A customer whose inputs
# the batch does not change never reaches the customers' ON CONFLICT (`NOT EXISTS` first):
# ON CONFLICT DO UPDATE locks the row until commit even when its WHERE updates nothing, and
# the batches of a group customer's other accounts, on other partitions (lanes, processes),
# queued on that lock.
_INPUTS_WRITE = DriverStatement("""
    WITH ep AS (SELECT * FROM unnest(CAST(:a AS text[]), CAST(:at AS timestamptz[]),
                                     CAST(:ec AS text[]), CAST(:peak AS bigint[]))
                       AS u(a, at, c, peak)),
    mv AS (SELECT * FROM unnest(CAST(:ma AS text[]), CAST(:mat AS timestamptz[]),
                                CAST(:mdue AS bigint[]), CAST(:mpeak AS bigint[]))
                  AS u(a, at, due, peak)),
    moved AS (UPDATE credit.arrears_episodes e
                 SET peak_fen = greatest(e.peak_fen, mv.peak),
                     cleared_at = CASE WHEN mv.due = 0 THEN mv.at END
                FROM mv
               WHERE e.account_id = mv.a AND e.cleared_at IS NULL
                 AND (mv.peak > e.peak_fen OR mv.due = 0)
              RETURNING 1),
    opened AS (INSERT INTO credit.arrears_episodes (account_id, started_at, customer_id, peak_fen)
               SELECT ep.a, ep.at, ep.c, ep.peak FROM ep
               ON CONFLICT DO NOTHING RETURNING 1),
    customers AS (INSERT INTO credit.rating_customers (customer_id, brand, opened_on,
                                                       blacklisted, blacklist_reason, updated_at)
               SELECT * FROM unnest(CAST(:c AS text[]), CAST(:brand AS text[]),
                                    CAST(:opened AS date[]), CAST(:black AS boolean[]),
                                    CAST(:why AS text[]), CAST(:cat AS timestamptz[]))
                             AS u(c, brand, opened, black, why, cat)
               WHERE NOT EXISTS (
                   SELECT 1 FROM credit.rating_customers r
                    WHERE r.customer_id = u.c
                      AND (r.brand, r.opened_on, r.blacklisted, r.blacklist_reason)
                          IS NOT DISTINCT FROM
                          (u.brand, coalesce(u.opened, r.opened_on), r.blacklisted OR u.black,
                           coalesce(r.blacklist_reason, u.why)))
               ON CONFLICT (customer_id) DO UPDATE SET brand = excluded.brand,
                   opened_on = coalesce(excluded.opened_on, rating_customers.opened_on),
                   blacklisted = rating_customers.blacklisted OR excluded.blacklisted,
                   blacklist_reason = coalesce(rating_customers.blacklist_reason,
                                               excluded.blacklist_reason),
                   updated_at = excluded.updated_at
               WHERE (rating_customers.brand, rating_customers.opened_on,
                      rating_customers.blacklisted, rating_customers.blacklist_reason)
                     IS DISTINCT FROM
                     (excluded.brand, coalesce(excluded.opened_on, rating_customers.opened_on),
                      rating_customers.blacklisted OR excluded.blacklisted,
                      coalesce(rating_customers.blacklist_reason, excluded.blacklist_reason))
               RETURNING 1),
    bills AS (INSERT INTO credit.rating_bills (account_id, bill_month, customer_id, billed_fen)
               SELECT * FROM unnest(CAST(:ba AS text[]), CAST(:bm AS date[]),
                                    CAST(:bc AS text[]), CAST(:bf AS bigint[]))
               ON CONFLICT (account_id, bill_month) DO UPDATE
               SET billed_fen = excluded.billed_fen
               WHERE rating_bills.billed_fen IS DISTINCT FROM excluded.billed_fen
               RETURNING 1)
    SELECT 1""")


async def record_inputs(conn: AsyncConnection, events: list[BalanceChanged],
                        current: list[BalanceChanged] | None = None,
                        due_before: dict[str, int] | None = None,
                        peak_due: dict[str, int] | None = None) -> None:
    """In the consumer's transaction: each customer's brand and open date (newest event
    wins), each account's bill per closed month (bill runs), and a write-off (核销: bad
    debt) blacklists the customer (seed 004: blacklisted customers are unrated). Customers
    in id order: concurrent partitions lock them in one order. `current`: each account's
    event that is its position now, as the balance path that just applied them knows it
    (read from the positions when not given); `due_before`: what those accounts owed before
    the batch, as it found them (not given: every account's open episode is looked at);
    `peak_due`: the most an account owed along the batch's fresh events (absent: its current
    event's due)."""
    if not events:
        return
    bills: dict[tuple[str, str], BalanceChanged] = {}
    for e in events:
        if e.cause is BalanceCause.BILL_RUN and e.closed_bill_month and e.billed_fen is not None:
            bills[(e.account_id, e.closed_bill_month)] = e
    # A write-off and a bill are facts whenever they come; a stale event (an older sequence
    # than the account's applied one: a replay) must not reopen an episode or bring back an
    # old snapshot.
    black = {e.customer.customer_id for e in events if e.cause is BalanceCause.WRITE_OFF}
    if current is None:
        current = await _current(conn, events)
    by_account = {e.account_id: e for e in current}
    episodes = [by_account[a] for a in sorted(by_account)]
    peaks = peak_due or {}
    # Only an account that owes now and owed nothing before the batch (or had no position)
    # may open an episode: one that owed has it open already, since every batch leaves an
    # open episode exactly where the account's newest event owes (`ep` opens one, `moved`
    # closes it at 0). Offering it anyway cost an ON CONFLICT probe per event.
    owing = [e for e in episodes if e.amount_due_fen > 0
             and (due_before is None or not due_before.get(e.account_id))]
    moving = episodes if due_before is None else [e for e in episodes if _may_move(
        e, peaks.get(e.account_id, e.amount_due_fen), due_before)]
    newest = {e.customer.customer_id: e for e in current}
    for e in events:  # a customer blacklisted by a stale write-off still gets its row
        if e.customer.customer_id in black:
            newest.setdefault(e.customer.customer_id, e)
    rows = [newest[c] for c in sorted(newest)]
    keys = sorted(bills)
    await _INPUTS_WRITE.execute(conn, {
        "a": [e.account_id for e in owing], "at": [e.as_of for e in owing],
        "ec": [e.customer.customer_id for e in owing],
        "peak": [peaks.get(e.account_id, e.amount_due_fen) for e in owing],
        "ma": [e.account_id for e in moving], "mat": [e.as_of for e in moving],
        "mdue": [e.amount_due_fen for e in moving],
        "mpeak": [peaks.get(e.account_id, e.amount_due_fen) for e in moving],
        "c": [e.customer.customer_id for e in rows],
        "brand": [e.customer.value_class or e.customer.tier.value for e in rows],
        "opened": [e.customer.opened_on for e in rows],
        "black": [e.customer.customer_id in black for e in rows],
        "why": [_WRITTEN_OFF if e.customer.customer_id in black else None for e in rows],
        "cat": [e.as_of for e in rows],
        "ba": [a for a, _ in keys], "bm": [date.fromisoformat(f"{m}-01") for _, m in keys],
        "bc": [bills[k].customer.customer_id for k in keys],
        "bf": [bills[k].billed_fen for k in keys]})


def _may_move(event: BalanceChanged, peak: int, due_before: dict[str, int]) -> bool:
    """Whether the account's open episode may move: it closes when nothing is owed, and its
    peak only follows a debt above the last one it saw. An open episode's peak is at least
    what the account owed before this batch (each batch's newest due went through here), so
    a batch whose debt never rose above that moves nothing; and an account without a position
    before the batch has no episode (one opens only with an applied event, whose position is
    never deleted)."""
    before = due_before.get(event.account_id)
    return before is not None and (event.amount_due_fen == 0 or peak > before)


_APPLIED = DriverStatement("""
    SELECT account_id, sequence FROM credit.account_positions
     WHERE account_id = ANY(CAST(:a AS text[]))""")


async def _current(conn: AsyncConnection, events: list[BalanceChanged]) -> list[BalanceChanged]:
    """Each account's event that is its applied position now (the batch's newest fresh one)."""
    applied = {r[0]: r[1] for r in await _APPLIED.fetch(
        conn, {"a": sorted({e.account_id for e in events})})}
    return [e for e in events if applied.get(e.account_id) == e.sequence]


# One statement for a whole run: each customer's inputs. Monthly spend: the customer's bills
# (summed over its accounts) averaged over the months billed within the window; suspensions:
# distinct business days a product of the customer went suspended, in the window and in the
# guidance period.
_INPUTS = """
WITH cand AS (SELECT unnest(CAST(:ids AS text[])) AS customer_id),
spend AS (
  SELECT b.customer_id, sum(b.billed_fen) / count(DISTINCT b.bill_month) AS avg_fen
    FROM credit.rating_bills b JOIN cand USING (customer_id)
   WHERE b.bill_month >= :spend_from AND b.bill_month < :month_start
   GROUP BY b.customer_id),
susp AS (
  SELECT pc.customer_id,
         count(DISTINCT (h.at AT TIME ZONE 'Asia/Shanghai')::date)
           FILTER (WHERE h.at >= :susp_from) AS n_window,
         count(DISTINCT (h.at AT TIME ZONE 'Asia/Shanghai')::date)
           FILTER (WHERE h.at >= :period_from) AS n_period
    FROM credit.state_history h
    JOIN credit.product_credit pc ON pc.product_id = h.product_id
    JOIN cand ON cand.customer_id = pc.customer_id
   WHERE h.state_after = 'suspended' AND h.at <= :as_of
     AND h.at >= least(:susp_from, :period_from)
   GROUP BY pc.customer_id)
SELECT c.customer_id, rc.brand, rc.opened_on, coalesce(rc.blacklisted, false),
       rc.blacklist_reason, coalesce(s.avg_fen, 0), coalesce(x.n_window, 0),
       coalesce(x.n_period, 0)
  FROM cand c LEFT JOIN credit.rating_customers rc USING (customer_id)
  LEFT JOIN spend s USING (customer_id) LEFT JOIN susp x USING (customer_id)
"""


async def inputs_for(conn: AsyncConnection, ids: list[str], windows: dict[str, Any]
                     ) -> list[RatingInputs]:
    rows = await conn.execute(text(_INPUTS), {"ids": ids, **windows})
    return [RatingInputs(customer_id=c, brand=b, opened_on=o, blacklisted=bl,
                         blacklist_reason=why, avg_monthly_spend_fen=int(avg),
                         suspensions=int(nw), suspensions_period=int(np))
            for c, b, o, bl, why, avg, nw, np in rows]


_ACTIVE_OVERRIDE = """EXISTS (SELECT 1 FROM credit.rating_overrides o
    WHERE o.customer_id = {c} AND o.removed_at IS NULL AND o.expires_at > :as_of)"""


async def basic_candidates(conn: AsyncConnection, as_of: datetime) -> list[Row[Any]]:
    """Unrated and 0★ customers (and rated ones blacklisted since), no override in force.
    A customer whose open date billing never sent (an older producer) is left alone: it keeps
    billing's tier rather than being made unrated for want of data."""
    q = f"""SELECT rc.customer_id, cr.star_level, coalesce(cr.limit_fen, 0) AS limit_fen
              FROM credit.rating_customers rc
              LEFT JOIN credit.customer_ratings cr USING (customer_id)
             WHERE (cr.star_level IS NULL OR cr.star_level = 0 OR rc.blacklisted)
               AND (rc.opened_on IS NOT NULL OR rc.blacklisted OR cr.customer_id IS NOT NULL)
               AND NOT {_ACTIVE_OVERRIDE.format(c='rc.customer_id')}
             ORDER BY rc.customer_id"""
    return list(await conn.execute(text(q), {"as_of": as_of}))


async def guidance_candidates(conn: AsyncConnection, as_of: datetime,
                              rated_before: datetime) -> list[Row[Any]]:
    """1–5★ customers rated before this half-year began, no override in force."""
    q = f"""SELECT cr.customer_id, cr.star_level, cr.limit_fen
              FROM credit.customer_ratings cr
             WHERE cr.star_level BETWEEN 1 AND 5 AND cr.rated_at < :rated_before
               AND NOT {_ACTIVE_OVERRIDE.format(c='cr.customer_id')}
             ORDER BY cr.customer_id"""
    return list(await conn.execute(text(q), {"as_of": as_of, "rated_before": rated_before}))


# --- a run's writes -------------------------------------------------------------------------


async def claim_run(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """False when this model's period already ran (a run is idempotent per period)."""
    done = await conn.execute(pg_insert(r.rating_runs).values(**values)
                              .on_conflict_do_nothing().returning(r.rating_runs.c.run_id))
    return done.first() is not None


async def finish_run(conn: AsyncConnection, run_id: str, considered: int, changed: int) -> None:
    await conn.execute(update(r.rating_runs).where(r.rating_runs.c.run_id == run_id)
                       .values(considered=considered, changed=changed))


async def run_row(conn: AsyncConnection, run_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(r.rating_runs)
                              .where(r.rating_runs.c.run_id == run_id))).first()
    return dict(row._mapping) if row else None


_CHANGES = """
    INSERT INTO credit.rating_changes (customer_id, model, period, star_before, star_after,
        limit_before_fen, limit_after_fen, score, inputs, reason, scorecard_version, actor, at)
    SELECT u.c, :model, :period, u.sb, u.sa, u.lb, u.la, u.score, u.inputs::jsonb, u.reason,
           :version, :actor, :at
      FROM unnest(CAST(:c AS text[]), CAST(:sb AS integer[]), CAST(:sa AS integer[]),
                  CAST(:lb AS bigint[]), CAST(:la AS bigint[]), CAST(:score AS integer[]),
                  CAST(:inputs AS text[]), CAST(:reason AS text[]))
           AS u(c, sb, sa, lb, la, score, inputs, reason)
    ON CONFLICT ON CONSTRAINT rating_changes_once DO NOTHING"""


async def write_changes(conn: AsyncConnection, run: dict[str, Any],
                        changes: list[dict[str, Any]]) -> None:
    """Every verdict of a run, one statement (arrays: no limit on the number of rows)."""
    if changes:
        await conn.execute(text(_CHANGES), {**run, **{
            k: [c[f] for c in changes] for k, f in (
                ("c", "customer_id"), ("sb", "star_before"), ("sa", "star_after"),
                ("lb", "limit_before_fen"), ("la", "limit_after_fen"), ("score", "score"),
                ("reason", "reason"))},
            "inputs": [orjson.dumps(c["inputs"]).decode() for c in changes]})


_RATINGS = """
    INSERT INTO credit.customer_ratings (customer_id, star_level, limit_fen, score, model,
        period, scorecard_version, rated_at, first_rated_on)
    SELECT u.c, u.star, u.lim, u.score, :model, :period, :version, :at, :day
      FROM unnest(CAST(:c AS text[]), CAST(:star AS integer[]), CAST(:lim AS bigint[]),
                  CAST(:score AS integer[])) AS u(c, star, lim, score)
    ON CONFLICT (customer_id) DO UPDATE SET star_level = excluded.star_level,
        limit_fen = excluded.limit_fen, score = excluded.score, model = excluded.model,
        period = excluded.period, scorecard_version = excluded.scorecard_version,
        rated_at = excluded.rated_at"""


async def upsert_ratings(conn: AsyncConnection, run: dict[str, Any],
                         ratings: list[dict[str, Any]]) -> None:
    if ratings:
        await conn.execute(text(_RATINGS), {
            "model": run["model"], "period": run["period"], "version": run["version"],
            "at": run["at"], "day": business_date(run["at"]),
            "c": [x["customer_id"] for x in ratings], "star": [x["star_level"] for x in ratings],
            "lim": [x["limit_fen"] for x in ratings], "score": [x["score"] for x in ratings]})


_PROFILES = """
    INSERT INTO credit.credit_profiles (customer_id, star_level, credit_limit_fen, tier,
                                        updated_by, updated_at)
    SELECT * FROM unnest(CAST(:c AS text[]), CAST(:star AS integer[]), CAST(:lim AS bigint[]),
                         CAST(:tier AS text[]), CAST(:by AS text[]),
                         CAST(:at AS timestamptz[]))
    ON CONFLICT (customer_id) DO UPDATE SET star_level = excluded.star_level,
        credit_limit_fen = excluded.credit_limit_fen, tier = excluded.tier,
        updated_by = excluded.updated_by, updated_at = excluded.updated_at"""
_PRODUCT_TIERS = """
    UPDATE credit.product_credit pc SET tier = u.tier
      FROM unnest(CAST(:c AS text[]), CAST(:tier AS text[])) AS u(customer_id, tier)
     WHERE pc.customer_id = u.customer_id AND u.tier IS NOT NULL
       AND pc.tier IS DISTINCT FROM u.tier"""
# A profile that says nothing (`billing_profile_values`): the products' tier is billing's
# again, from the snapshot of their account's newest position (what a balance event gives).
_SNAPSHOT_TIERS = """
    UPDATE credit.product_credit pc SET tier = ap.customer->>'tier'
      FROM credit.account_positions ap
     WHERE pc.customer_id = ANY(CAST(:c AS text[])) AND ap.account_id = pc.account_id
       AND ap.customer->>'tier' IS NOT NULL AND pc.tier IS DISTINCT FROM ap.customer->>'tier'"""


# The customers whose profile the rating changes (star, limit or tier; or a first one).
_CHANGED = """
    SELECT u.c FROM unnest(CAST(:c AS text[]), CAST(:star AS integer[]), CAST(:lim AS bigint[]),
                           CAST(:tier AS text[])) AS u(c, star, lim, tier)
    LEFT JOIN credit.credit_profiles cp ON cp.customer_id = u.c
    WHERE cp.customer_id IS NULL
       OR (cp.star_level, cp.credit_limit_fen, cp.tier) IS DISTINCT FROM (u.star, u.lim, u.tier)
    ORDER BY u.c"""


async def feed_profiles(conn: AsyncConnection, profiles: list[dict[str, Any]]) -> list[str]:
    """The credit profile credit-control decides with (star, limit, tier) := the rating;
    the products' tier too, so a sweep (which reads product_credit.tier) agrees. Returns the
    customers whose profile changed (their products are reconsidered: the caller)."""
    if not profiles:
        return []
    cols = {"c": "customer_id", "star": "star_level", "lim": "credit_limit_fen",
            "tier": "tier", "by": "updated_by", "at": "updated_at"}
    values = {k: [p[f] for p in profiles] for k, f in cols.items()}
    changed = [r[0] for r in await conn.execute(text(_CHANGED), {
        k: values[k] for k in ("c", "star", "lim", "tier")})]
    await conn.execute(text(_PROFILES), values)
    await conn.execute(text(_PRODUCT_TIERS), {"c": [p["customer_id"] for p in profiles],
                                              "tier": [p["tier"] for p in profiles]})
    billing = [p["customer_id"] for p in profiles if p["tier"] is None]
    if billing:
        await conn.execute(text(_SNAPSHOT_TIERS), {"c": billing})
    return changed


# --- scorecards -----------------------------------------------------------------------------


async def scorecard(conn: AsyncConnection) -> tuple[Scorecard, Row[Any] | None]:
    s = r.rating_scorecards
    row = (await conn.execute(select(s).order_by(s.c.version.desc()).limit(1))).first()
    if row is None:
        return DEFAULT_SCORECARD, None
    return Scorecard.model_validate(row.card), row


async def store_scorecard(conn: AsyncConnection, card: Scorecard, by: str, reason: str,
                          at: datetime) -> bool:
    s = r.rating_scorecards
    done = await conn.execute(pg_insert(s).values(
        version=card.version, card=card.model_dump(mode="json"), changed_by=by, reason=reason,
        changed_at=at).on_conflict_do_nothing().returning(s.c.version))
    return done.first() is not None


# --- one customer ---------------------------------------------------------------------------


async def rating_of(conn: AsyncConnection, customer_id: str) -> dict[str, Any] | None:
    cr = r.customer_ratings
    row = (await conn.execute(select(cr).where(cr.c.customer_id == customer_id))).first()
    return dict(row._mapping) if row else None


async def history_of(conn: AsyncConnection, customer_id: str) -> list[dict[str, Any]]:
    c = r.rating_changes
    rows = await conn.execute(select(c).where(c.c.customer_id == customer_id)
                              .order_by(c.c.at, c.c.id))
    return [dict(x._mapping) for x in rows]


async def overrides_of(conn: AsyncConnection, customer_id: str) -> list[dict[str, Any]]:
    o = r.rating_overrides
    rows = await conn.execute(select(o).where(o.c.customer_id == customer_id)
                              .order_by(o.c.created_at))
    return [dict(x._mapping) for x in rows]


async def ended_overrides(conn: AsyncConnection, as_of: datetime) -> list[Row[Any]]:
    """Overrides that ran out (or were removed) and whose end the profile has not seen."""
    o = r.rating_overrides
    q = (select(o).where(o.c.ended_applied.is_(False),
                         (o.c.expires_at <= as_of) | o.c.removed_at.is_not(None))
         .order_by(o.c.override_id).with_for_update(skip_locked=True))
    return list(await conn.execute(q))


def business_day(at: datetime) -> date:
    return business_date(at)


async def lock_customer(conn: AsyncConnection, customer_id: str) -> None:
    """Serialises overrides of one customer (check-then-insert)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('rating:' || :c))"),
                       {"c": customer_id})


def billing_profile_values(customer_id: str, by: str, at: datetime) -> dict[str, Any]:
    """A profile that says nothing (no star, limit or tier): billing's snapshot applies, as
    for a customer the model never rated; `feed_profiles` sets the products' tier back to
    their account's snapshot's (`_SNAPSHOT_TIERS`)."""
    return {"customer_id": customer_id, "star_level": None, "credit_limit_fen": None,
            "tier": None, "updated_by": by, "updated_at": at}


def profile_values(card: Scorecard, customer_id: str, rating: Rating, by: str,
                   at: datetime) -> dict[str, Any]:
    """The credit profile a rating gives (docs/rating.md: tier from the star)."""
    return {"customer_id": customer_id, "star_level": rating.star,
            "credit_limit_fen": rating.limit_fen, "tier": card.tier(rating.star),
            "updated_by": by, "updated_at": at}
