"""What credit-control wants the chain to hold, per product: read by the gateway's reconciliation.

Served by credit-control at `GET /v1/provisioning/desired?after=<product_id>&limit=N`
as `DesiredChainPage`, paged by product id.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from .gateway import ProvisioningAction
from .snapshots import ProductFamily


class DesiredChainState(BaseModel):
    model_config = ConfigDict(frozen=True)
    product_id: str
    account_id: str
    customer_id: str
    cpno: str
    family: ProductFamily
    vendor: str | None = None
    desired: ProvisioningAction  # suspend = blocked at the gateway, restore = open
    sequence: int  # the newest command's sequence (0: never commanded, open)
    since: datetime | None = None  # when credit-control decided it


class DesiredChainPage(BaseModel):
    items: tuple[DesiredChainState, ...]
    next_after: str | None = None  # pass as `after` for the next page; None at the end
