"""The vendors' gateway adapters, by the name products carry (`vendor`, or the family for
SMS-direct). Adding a vendor is one module here and one line below."""

from common.contracts.snapshots import ProductFamily

from ...domain.vendors import VendorAdapter
from . import huawei, jiaxun, ruoya, sms_direct

ADAPTERS: dict[str, VendorAdapter] = {
    a.name: a for a in (huawei.ADAPTER, jiaxun.ADAPTER, ruoya.ADAPTER, sms_direct.ADAPTER)
}


def adapter_for(family: str, vendor: str | None) -> VendorAdapter | None:
    """SMS-direct has one interface whoever sold it; a MAS product goes by its vendor."""
    if family == ProductFamily.SMS_DIRECT.value:
        return ADAPTERS[sms_direct.ADAPTER.name]
    return ADAPTERS.get((vendor or "").strip().lower())
