"""Each vendor's adapter renders its own command format, with its quirks."""

import json
import string
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contracts.gateway import ProvisioningAction
from gateway_adapter.adapters.vendors import ADAPTERS, adapter_for
from gateway_adapter.domain.vendors import GatewayInstruction, VendorRefused

AT = datetime(2026, 11, 30, 12, 0, 5, tzinfo=UTC)  # 20:00:05 in Shanghai


def instruction(action: ProvisioningAction = ProvisioningAction.SUSPEND, cpno: str = "CP0001",
                customer: str | None = "G001") -> GatewayInstruction:
    return GatewayInstruction(action, "P1", cpno, customer, 7, "emos-abc", AT)


def test_huawei_xml_with_local_time() -> None:
    text = ADAPTERS["huawei"].render(instruction())
    assert text == ("<MASProvisionReq><OprCode>PAUSE</OprCode><ProdInstId>CP0001</ProdInstId>"
                    "<OrderId>emos-abc</OrderId><OprSeq>7</OprSeq>"
                    "<OprTime>20261130200005</OprTime></MASProvisionReq>")
    assert "<OprCode>RESUME</OprCode>" in ADAPTERS["huawei"].render(
        instruction(ProvisioningAction.RESTORE))
    assert "&lt;x&gt;" in ADAPTERS["huawei"].render(instruction(cpno="<x>"))


def test_jiaxun_form_in_gbk_acknowledges_async() -> None:
    jiaxun = ADAPTERS["jiaxun"]
    assert jiaxun.acknowledges_async is True
    fields = parse_qs(jiaxun.render(instruction(ProvisioningAction.RESTORE, cpno="号码1")),
                      encoding="gbk")
    assert fields == {"cmd": ["OPEN"], "spcode": ["号码1"], "serial": ["emos-abc"], "seq": ["7"]}
    with pytest.raises(VendorRefused, match="GBK"):
        jiaxun.render(instruction(cpno="\u20ac\U0001f600"))


@settings(max_examples=300)
@given(cpno=st.text(alphabet=string.ascii_letters + string.digits + "_.~- +&=%/号€", min_size=1),
       order=st.one_of(st.none(), st.text(string.ascii_letters + string.digits + "-_ ")),
       sequence=st.integers(0, 2**40))
def test_jiaxun_form_is_what_urlencode_writes(cpno: str, order: str | None, sequence: int) -> None:
    """The plain fields' shortcut writes what urlencode writes (and refuses what it refuses)."""
    i = GatewayInstruction(ProvisioningAction.SUSPEND, "P1", cpno, "G001", sequence, order, AT)
    fields = {"cmd": "STOP", "spcode": cpno, "serial": order or "", "seq": str(sequence)}
    try:
        expected = urlencode(fields, encoding="gbk")
    except UnicodeEncodeError:
        with pytest.raises(VendorRefused):
            ADAPTERS["jiaxun"].render(i)
        return
    assert ADAPTERS["jiaxun"].render(i) == expected


def test_ruoya_json_needs_the_enterprise_code() -> None:
    body = json.loads(ADAPTERS["ruoya"].render(instruction()))
    assert body == {"ecCode": "G001", "productNo": "CP0001", "op": 0, "orderNo": "emos-abc",
                    "ts": int(AT.timestamp() * 1000)}
    assert json.loads(ADAPTERS["ruoya"].render(instruction(ProvisioningAction.RESTORE)))["op"] == 1
    with pytest.raises(VendorRefused, match="ecCode"):
        ADAPTERS["ruoya"].render(instruction(customer=None))


def test_ruoya_json_is_compact_and_unescaped_utf8() -> None:
    """The exact text, as `json.dumps(..., separators=(",", ":"), ensure_ascii=False)` writes
    it: Chinese as it is, quotes, backslashes and control characters escaped."""
    text = ADAPTERS["ruoya"].render(instruction(cpno='号码"\\\n\u2028', customer="集团1"))
    assert text == json.dumps({"ecCode": "集团1", "productNo": '号码"\\\n\u2028', "op": 0,
                               "orderNo": "emos-abc", "ts": int(AT.timestamp() * 1000)},
                              separators=(",", ":"), ensure_ascii=False)
    assert text.startswith('{"ecCode":"集团1","productNo":"号码\\"\\\\\\n')


def test_sms_direct_fixed_width_and_ucs2_remark() -> None:
    text = ADAPTERS["sms_direct"].render(instruction(cpno="CPSMS12345678901"))
    assert text == f"SVC|2345678901|1|0000000007|{'欠费停机'.encode('utf-16-be').hex().upper()}"
    assert ADAPTERS["sms_direct"].render(instruction(ProvisioningAction.RESTORE)).startswith(
        "SVC|CP0001    |0|")


@pytest.mark.parametrize(("family", "vendor", "name"), [
    ("MAS", "huawei", "huawei"), ("MAS", "Jiaxun ", "jiaxun"), ("MAS", "ruoya", "ruoya"),
    ("SMS_DIRECT", None, "sms_direct"), ("SMS_DIRECT", "huawei", "sms_direct")])
def test_adapter_lookup(family: str, vendor: str | None, name: str) -> None:
    found = adapter_for(family, vendor)
    assert found is not None and found.name == name


def test_no_adapter_for_an_unknown_mas_vendor() -> None:
    assert adapter_for("MAS", "acme") is None
    assert adapter_for("MAS", None) is None
