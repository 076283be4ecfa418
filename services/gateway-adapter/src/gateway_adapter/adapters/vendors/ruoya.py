"""Ruoya CRM-MAS (若雅企业信息机): JSON with numeric op codes (0 = block, 1 = open), times as
epoch milliseconds, and it needs the enterprise code (集团编码): without it the command is
refused."""

from dataclasses import dataclass

import orjson

from common.contracts.gateway import ProvisioningAction

from ...domain.vendors import GatewayInstruction, VendorRefused


@dataclass(frozen=True)
class Ruoya:
    name: str = "ruoya"
    quirks: str = ("JSON; op 0 = block, 1 = open; ts epoch ms; needs the enterprise code "
                   "(ecCode), refused without it")
    acknowledges_async: bool = False

    def render(self, i: GatewayInstruction) -> str:
        if not i.customer_id:
            raise VendorRefused("ecCode (the enterprise code) is required")
        # Compact, UTF-8 unescaped: what `json.dumps(..., separators=(",", ":"),
        # ensure_ascii=False)` writes, in ~0.2 µs where that took ~2.7 µs (the chain's path).
        return orjson.dumps({
            "ecCode": i.customer_id, "productNo": i.cpno,
            "op": 0 if i.action is ProvisioningAction.SUSPEND else 1,
            "orderNo": i.emos_order_id, "ts": int(i.at.timestamp() * 1000),
        }).decode()


ADAPTER = Ruoya()
