"""The invariant checker: from the databases and the topics alone, is every effect there once?

`verify(...)` runs the checks (balance events, decisions, SMS, chain, stale SMS, stale amounts
and the others below) and returns their counts; `scripts/verify.py` (`make verify`) prints
them. It reads every service's schema with SQL and the topics with aiokafka; it imports the
services' *pure* domain modules only (credit_control.credit.domain, notifier.domain) to
recompute what should exist, which is why it lives under tests/ and not in libs/common
(libs/common imports no service).
"""

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .checks import check_balance, check_chain, check_decisions, check_sms
from .counts import Check, Report
from .notice import check_notice
from .notice_delivered import check_notice_delivered
from .products_known import check_products_known
from .stale_amount import check_stale_amounts
from .stale_sms import check_stale_sms
from .stalls import check_stalls

__all__ = ["Check", "Report", "verify", "verify_on"]


async def verify(engine: AsyncEngine, bootstrap: str, prefix: str = "",
                 gateway_url: str | None = None, token: str = "dev-token") -> Report:
    async with engine.connect() as conn:
        return await verify_on(conn, bootstrap, prefix, gateway_url, token)


async def verify_on(conn: AsyncConnection, bootstrap: str, prefix: str = "",
                    gateway_url: str | None = None, token: str = "dev-token") -> Report:
    """On the caller's connection: a test can change rows in a transaction it rolls back."""
    return Report([
        await check_balance(conn, bootstrap, prefix),
        await check_decisions(conn, bootstrap, prefix),
        await check_sms(conn, prefix),
        await check_chain(conn, prefix, gateway_url, token),
        await check_stalls(bootstrap),
        await check_notice(conn, prefix),
        await check_notice_delivered(conn, prefix),
        await check_products_known(conn, prefix),
        await check_stale_sms(conn, prefix),
        await check_stale_amounts(conn, prefix),
    ])
