"""SMS-direct (短信直联): the industry gateway's own CMPP-style service control, fixed-width
fields (Service_Id padded to 10, Status "1" = barred, "0" = open, hex UCS-2 remark);
synchronous."""

from dataclasses import dataclass

from common.contracts.gateway import ProvisioningAction

from ...domain.vendors import GatewayInstruction, VendorRefused

SERVICE_ID_WIDTH = 10


@dataclass(frozen=True)
class SmsDirect:
    name: str = "sms_direct"
    quirks: str = ("CMPP-style fixed width: Service_Id ≤10 chars space-padded, Status 1 = "
                   "barred / 0 = open, remark hex UCS-2; synchronous")
    acknowledges_async: bool = False

    def render(self, i: GatewayInstruction) -> str:
        service_id = i.cpno[-SERVICE_ID_WIDTH:]  # the gateway keys on the number's tail
        if not service_id.isascii():
            raise VendorRefused(f"Service_Id must be ASCII, got {i.cpno!r}")
        status = "1" if i.action is ProvisioningAction.SUSPEND else "0"
        remark = ("欠费停机" if status == "1" else "缴费开机").encode("utf-16-be").hex().upper()
        return f"SVC|{service_id:<{SERVICE_ID_WIDTH}}|{status}|{i.sequence:010d}|{remark}"


ADAPTER = SmsDirect()
