"""The sweep's freeze test (adapters/sweep_sql.py `_FREEZES_SQL`, `_frozen`) says what the
domain's (credit/domain/freezes.py) says, scope by scope, for suspensions and warnings: each
freeze alone in credit.freezes, in a transaction rolled back (no sweep ever sees it)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.adapters import sweep_sql
from credit_control.credit.domain.freezes import Covered, Freeze, Scope

pytestmark = pytest.mark.integration

AT = datetime(9000, 5, 31, 12, tzinfo=UTC)  # no test year comes near it
PRODUCTS = [
    Covered(ProductFamily.MAS, Tier.MID, 3, "huawei", "渠道A", "C1", "南城"),
    Covered(ProductFamily.ADC, Tier.HIGH, None, None, None, "C2", None),
    Covered(ProductFamily.SMS_DIRECT, Tier.LOW, 0, "jiaxun", "渠道B", "C3", "虎门"),
]
FREEZES = [(Scope.ALL, None)] + [(s, v) for s, vs in {
    Scope.FAMILY: ["MAS", "ADC"], Scope.TIER: ["mid", "low"], Scope.STAR_LEVEL: ["3", "0"],
    Scope.VENDOR: ["huawei"], Scope.CHANNEL: ["渠道B"], Scope.CUSTOMER: ["C2"],
    Scope.REGION: ["虎门", "长安"]}.items()
    for v in vs]


def _sql() -> str:
    rows = ", ".join(
        f"({i}, '{p.family.value}', '{p.tier.value}', "
        f"{p.star_level if p.star_level is not None else 'NULL'}::int, "
        f"jsonb_strip_nulls(jsonb_build_object('vendor', "
        f"{repr(p.vendor) if p.vendor else 'NULL'}::text, 'channel', "
        f"{repr(p.channel) if p.channel else 'NULL'}::text)), '{p.customer_id}', "
        f"{repr(p.region) if p.region else 'NULL'}::text)"
        for i, p in enumerate(PRODUCTS))
    return (f"WITH {sweep_sql._FREEZES_SQL} SELECT p.i, {sweep_sql._frozen('p', 'p.star')}, "
            f"{sweep_sql._frozen('p', 'p.star', warnings=True)} FROM (VALUES {rows}) "
            "AS p(i, family, tier, star, product, customer_id, region) CROSS JOIN fz "
            "ORDER BY p.i")


@pytest.mark.parametrize("warnings", [False, True])
@pytest.mark.parametrize("scope, value", FREEZES)
async def test_the_sweeps_freeze_test_is_the_domains(
    db: AsyncEngine, scope: Scope, value: str | None, warnings: bool
) -> None:
    freeze = Freeze("parity", scope, value, warnings, AT - timedelta(days=1),
                    AT + timedelta(days=1))
    async with db.connect() as conn:
        tx = await conn.begin()
        try:
            await conn.execute(text(
                "INSERT INTO credit.freezes (freeze_id, scope, value, covers_warnings, reason, "
                "approver, starts_at, until, created_by, created_at) VALUES ('parity-' || "
                "md5(random()::text), :scope, :value, :w, 'parity', 'a', :s, :u, 'b', now())"),
                {"scope": scope.value, "value": value, "w": warnings,
                 "s": freeze.starts_at, "u": freeze.until})
            rows = (await conn.execute(text(_sql()), {"as_of": AT})).all()
        finally:
            await tx.rollback()
    assert [(bool(r[1]), bool(r[2])) for r in rows] == [
        (freeze.covers(p), warnings and freeze.covers(p)) for p in PRODUCTS]
