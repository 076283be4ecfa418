"""Staff name customers by id (an exemption, a rating override): one a typo made up must get
a 404, not a red list or a star nobody will ever be rated under."""

from common.errors import NotFound

from ...adapters import peers
from ...service_layer.context import CreditContext
from ..adapters import admin_repository as admin_repo


async def require_known_customer(ctx: CreditContext, customer_id: str) -> None:
    """Known here (a profile, an exemption, a product of a balance event), or to billing;
    else 404. Asked before any transaction opens: billing may be asked over HTTP."""
    async with ctx.engine.connect() as conn:
        if await admin_repo.customer_heard_of(conn, customer_id):
            return
    s = ctx.settings
    if not await peers.billing_knows_customer(
            s.billing_url, s.peer_token.get_secret_value(), customer_id, s.peer_timeout_s):
        raise NotFound(f"no service knows customer {customer_id!r}: create it in billing "
                       "first", field="customer_id", customer_id=customer_id)
