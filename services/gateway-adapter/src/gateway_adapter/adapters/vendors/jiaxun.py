"""Jiaxun CRM-MAS (嘉讯企业信息机): form-encoded key=value in GBK, commands STOP / OPEN; it
acknowledges at once and confirms the block later (asynchronous acknowledgement)."""

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from common.contracts.gateway import ProvisioningAction

from ...domain.vendors import GatewayInstruction, VendorRefused

_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


@dataclass(frozen=True)
class Jiaxun:
    name: str = "jiaxun"
    quirks: str = ("form-encoded GBK key=value; cmd STOP/OPEN; spcode = CPNO; acknowledges "
                   "at once, confirms later")
    acknowledges_async: bool = True

    def render(self, i: GatewayInstruction) -> str:
        cmd = "STOP" if i.action is ProvisioningAction.SUSPEND else "OPEN"
        fields = {"cmd": cmd, "spcode": i.cpno, "serial": i.emos_order_id or "",
                  "seq": str(i.sequence)}
        if all(map(_PLAIN.fullmatch, fields.values())):
            # What urlencode leaves as it is (quote_plus's always-safe characters), joined
            # without its per-character work: the usual CPNO, order id and sequence.
            return "&".join([f"{k}={v}" for k, v in fields.items()])
        try:
            body = urlencode(fields, encoding="gbk")
        except UnicodeEncodeError as exc:
            raise VendorRefused(f"not representable in GBK: {exc.object!r}") from exc
        return body


ADAPTER = Jiaxun()
