"""Huawei CRM-MAS (华为企业信息机): an XML request, operation codes PAUSE / RESUME, local
time as YYYYMMDDHHMMSS; answers synchronously."""

from dataclasses import dataclass
from xml.sax.saxutils import escape

from common.clock import BUSINESS_TZ
from common.contracts.gateway import ProvisioningAction

from ...domain.vendors import GatewayInstruction


@dataclass(frozen=True)
class Huawei:
    name: str = "huawei"
    quirks: str = ("XML <MASProvisionReq>; OprCode PAUSE/RESUME; OprTime local "
                   "YYYYMMDDHHMMSS; synchronous answer")
    acknowledges_async: bool = False

    def render(self, i: GatewayInstruction) -> str:
        opr = "PAUSE" if i.action is ProvisioningAction.SUSPEND else "RESUME"
        when = i.at.astimezone(BUSINESS_TZ).strftime("%Y%m%d%H%M%S")
        return ("<MASProvisionReq>"
                f"<OprCode>{opr}</OprCode><ProdInstId>{escape(i.cpno)}</ProdInstId>"
                f"<OrderId>{escape(i.emos_order_id or '')}</OrderId>"
                f"<OprSeq>{i.sequence}</OprSeq><OprTime>{when}</OprTime>"
                "</MASProvisionReq>")


ADAPTER = Huawei()
