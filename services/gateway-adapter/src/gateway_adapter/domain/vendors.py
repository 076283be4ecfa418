"""What the industry gateway needs from a vendor adapter. Pure.

Each MAS vendor (and SMS-direct) speaks its own command format; the adapters live in
`adapters/vendors/`, one module each, and are looked up by the product's vendor.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from common.contracts.gateway import ProvisioningAction


@dataclass(frozen=True)
class GatewayInstruction:
    """Block or open one enterprise's product at the industry gateway."""

    action: ProvisioningAction
    product_id: str
    cpno: str
    customer_id: str | None  # the enterprise code (集团编码)
    sequence: int
    emos_order_id: str | None
    at: datetime


class VendorRefused(Exception):
    """The vendor's interface rejects the command as built: retrying it unchanged cannot help."""


class VendorAdapter(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def quirks(self) -> str:
        """One line for the docs and `GET /v1/vendors`."""
        ...

    @property
    def acknowledges_async(self) -> bool:
        """True: the gateway answers "accepted" at once, confirms the block or opening later."""
        ...

    def render(self, instruction: GatewayInstruction) -> str:
        """The command as the vendor's interface takes it; raises VendorRefused."""
        ...
