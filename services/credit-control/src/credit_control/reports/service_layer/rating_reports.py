"""Seed 004's effects, reported (docs/rating.md): the star distribution against the seed's
shares, average suspension time per star level, recovery after emergency no-suspension, and
the churn rate by star level. Each returns {"rows": [...], ...} (JSON, or CSV from rows)."""

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from ...rating.service_layer.churn import month_bounds
from ...service_layer.context import CreditContext

# seed 004's table: share of users per star (0★ and unrated: the rest, about half)
SEED_SHARES = {5: 1.0, 4: 7.0, 3: 7.0, 2: 15.0, 1: 20.0}
SEED_CHURN = {"credited": 0.09, "non_credited": 2.01}  # % (seed 004, January 2013)
STAR_LABELS = ["5", "4", "3", "2", "1", "0", "unrated"]


def _label(star: int | None) -> str:
    return "unrated" if star is None else str(star)


def _pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 2) if whole else None


async def star_distribution(ctx: CreditContext) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        counts = {_label(s): int(n) for s, n in await conn.execute(text(
            "SELECT star_level, count(*) FROM credit.customer_ratings GROUP BY star_level"))}
        overridden = await conn.scalar(text(
            "SELECT count(DISTINCT customer_id) FROM credit.rating_overrides "
            "WHERE removed_at IS NULL AND NOT ended_applied AND expires_at > :now"),
            {"now": ctx.clock.now()})
    total = sum(counts.values())
    rows = []
    for label in STAR_LABELS:
        share = _pct(counts.get(label, 0), total)
        seed = SEED_SHARES.get(int(label)) if label.isdigit() else None
        rows.append({"star": label, "customers": counts.get(label, 0), "share_pct": share,
                     "seed_share_pct": seed,
                     "gap_points": round(share - seed, 2) if share is not None
                     and seed is not None else None})
    return {"rows": rows, "rated_customers": total, "overridden_now": int(overridden or 0)}


# Each suspension of a product in the month (into `suspended`), until the next move out of it
# (restored, pre-cancelled) or `as_of`; the star the customer had then (its newest rating
# change before it, else its profile's).
_SUSPENSIONS = """
WITH s AS (
  SELECT h.product_id, h.at AS started, pc.customer_id,
         (SELECT min(n.at) FROM credit.state_history n
           WHERE n.product_id = h.product_id AND n.id > h.id
             AND n.state_before = 'suspended') AS ended
    FROM credit.state_history h JOIN credit.product_credit pc USING (product_id)
   WHERE h.state_after = 'suspended' AND h.at >= :start AND h.at < :end AND h.at <= :as_of)
SELECT coalesce((SELECT c.star_after FROM credit.rating_changes c
                  WHERE c.customer_id = s.customer_id AND c.at <= s.started
                  ORDER BY c.at DESC, c.id DESC LIMIT 1),
                (SELECT p.star_level FROM credit.credit_profiles p
                  WHERE p.customer_id = s.customer_id)) AS star,
       count(*), avg(extract(epoch FROM least(coalesce(s.ended, :as_of), :as_of) - s.started)),
       count(*) FILTER (WHERE s.ended IS NULL OR s.ended > :as_of)
  FROM s GROUP BY 1"""


async def suspension_time(ctx: CreditContext, month: date, as_of: datetime | None
                          ) -> dict[str, Any]:
    start, end = month_bounds(month)
    at = as_of or ctx.clock.now()
    async with ctx.engine.connect() as conn:
        found = {_label(s): (int(n), float(secs or 0), int(open_))
                 for s, n, secs, open_ in await conn.execute(text(_SUSPENSIONS), {
                     "start": start, "end": end, "as_of": at})}
    rows = [{"star": label, "suspensions": found.get(label, (0, 0.0, 0))[0],
             "avg_hours": round(found[label][1] / 3600, 1) if label in found else None,
             "still_suspended": found.get(label, (0, 0.0, 0))[2]} for label in STAR_LABELS]
    credited = [found[x] for x in ("5", "4", "3", "2", "1") if x in found]
    others = [found[x] for x in ("0", "unrated") if x in found]
    return {"month": f"{month:%Y-%m}", "as_of": at.isoformat(), "rows": rows,
            "credited_avg_hours": _avg_hours(credited), "non_credited_avg_hours":
            _avg_hours(others), "seed": "授信用户的平均停机时长较授信前减少75%"}


def _avg_hours(groups: list[tuple[int, float, int]]) -> float | None:
    n = sum(g[0] for g in groups)
    return round(sum(g[0] * g[1] for g in groups) / n / 3600, 1) if n else None


# Arrears episodes that overlap an emergency no-suspension of the customer, by the month
# they began; paid within one month (the first overdraft month) and within four months.
_RECOVERY = """
SELECT e.peak_fen,
       e.cleared_at IS NOT NULL AND e.cleared_at <= e.started_at + interval '1 month' AS m1,
       e.cleared_at IS NOT NULL AND e.cleared_at <= e.started_at + interval '4 months' AS m4
  FROM credit.arrears_episodes e
 WHERE e.started_at >= :start AND e.started_at < :end
   AND EXISTS (SELECT 1 FROM credit.exemptions x
                WHERE x.customer_id = e.customer_id AND x.kind = 'emergency'
                  AND x.created_at <= coalesce(e.cleared_at, :as_of)
                  AND coalesce(x.removed_at, x.until, 'infinity') > e.started_at)"""


async def emergency_recovery(ctx: CreditContext, month: date, as_of: datetime | None
                             ) -> dict[str, Any]:
    start, end = month_bounds(month)
    at = as_of or ctx.clock.now()
    async with ctx.engine.connect() as conn:
        eps = [(int(p), bool(m1), bool(m4)) for p, m1, m4 in await conn.execute(
            text(_RECOVERY), {"start": start, "end": end, "as_of": at})]
    owed = sum(p for p, _, _ in eps)
    rows = [
        {"measure": "paid in the first overdraft month (users)",
         "pct": _pct(sum(1 for e in eps if e[1]), len(eps)), "seed_pct": 85.0},
        {"measure": "paid in the first overdraft month (amount)",
         "pct": _pct(sum(p for p, m1, _ in eps if m1), owed), "seed_pct": 85.0},
        {"measure": "paid within four months (users)",
         "pct": _pct(sum(1 for e in eps if e[2]), len(eps)), "seed_pct": 95.0},
        {"measure": "paid within four months (amount)",
         "pct": _pct(sum(p for p, _, m4 in eps if m4), owed), "seed_pct": 95.0},
    ]
    complete = at >= end + timedelta(days=124)
    return {"month": f"{month:%Y-%m}", "as_of": at.isoformat(), "episodes": len(eps),
            "owed_fen": owed, "rows": rows, "four_months_elapsed": complete}


# Customers that left in the month: a revisit recorded them as churned, or a product of
# theirs was pre-cancelled (欠费离网); by the star their rating has.
_CHURNED = """
SELECT customer_id FROM credit.churn_entries
 WHERE outcome = 'churned' AND revisited_at >= :start AND revisited_at < :end
UNION
SELECT pc.customer_id FROM credit.state_history h JOIN credit.product_credit pc
 USING (product_id) WHERE h.state_after = 'pre_cancel' AND h.at >= :start AND h.at < :end"""


async def churn_rate(ctx: CreditContext, month: date) -> dict[str, Any]:
    start, end = month_bounds(month)
    async with ctx.engine.connect() as conn:
        base = {c: _label(s) for c, s in await conn.execute(text(
            "SELECT customer_id, star_level FROM credit.customer_ratings"))}
        churned = {r[0] for r in await conn.execute(text(_CHURNED),
                                                    {"start": start, "end": end})}
        reasons = {r[0]: int(r[1]) for r in await conn.execute(text(
            "SELECT churn_reason, count(*) FROM credit.churn_entries WHERE outcome = 'churned'"
            " AND revisited_at >= :start AND revisited_at < :end GROUP BY 1"),
            {"start": start, "end": end})}
    rows = []
    for label in STAR_LABELS:
        members = [c for c, s in base.items() if s == label]
        left = sum(1 for c in members if c in churned)
        rows.append({"star": label, "customers": len(members), "churned": left,
                     "churn_pct": _pct(left, len(members))})
    credited = [c for c, s in base.items() if s in ("5", "4", "3", "2", "1")]
    others = [c for c, s in base.items() if s in ("0", "unrated")]
    return {"month": f"{month:%Y-%m}", "rows": rows,
            "credited_churn_pct": _pct(sum(c in churned for c in credited), len(credited)),
            "non_credited_churn_pct": _pct(sum(c in churned for c in others), len(others)),
            "seed_pct": SEED_CHURN, "reasons": reasons}
