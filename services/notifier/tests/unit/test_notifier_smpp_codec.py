"""The SMPP 3.4 codec against the specification's byte layouts, delivery receipts, and
malformed, truncated and oversized PDUs; the UCS-2 segments the provider sends for the
notifier's own texts."""

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.ucs2 import segments
from notifier.adapters.smpp import codec as s
from notifier.domain.templates import DEFAULT_TEMPLATES, SEED_TEMPLATES, split_segments


def test_bind_transceiver_layout() -> None:
    raw = s.encode(s.Bind(s.Command.BIND_TRANSCEIVER, "notifier", "secret"), 1)
    body = b"notifier\0" + b"secret\0" + b"\0" + b"\x34\x00\x00" + b"\0"
    assert raw == struct.pack(">IIII", 16 + len(body), 0x09, 0, 1) + body
    header, pdu = s.decode(raw)
    assert (header.command_id, header.sequence) == (0x09, 1)
    assert pdu == s.Bind(s.Command.BIND_TRANSCEIVER, "notifier", "secret")


def test_bind_resp_with_error_status_and_no_body() -> None:
    raw = struct.pack(">IIII", 16, 0x80000009, 0x0E, 1)
    header, pdu = s.decode(raw)
    assert header.status == s.Status.RINVPASWD and pdu == s.BindResp(
        s.Command.BIND_TRANSCEIVER_RESP)


def test_submit_sm_layout() -> None:
    udh = bytes([5, 0, 3, 7, 2, 1])
    sm = s.ShortMessage(s.Command.SUBMIT_SM, "10086", "13800138000",
                        udh + "您好".encode("utf-16-be"), esm_class=0x40, data_coding=8,
                        registered_delivery=1, tlvs=((s.TLV_CLIENT_REF, b"m-1:1"),))
    raw = s.encode(sm, 5)
    body = raw[16:]
    expected = (b"\0" + b"\x00\x00" + b"10086\0" + b"\x01\x01" + b"13800138000\0"
                + bytes([0x40, 0, 0]) + b"\0" + b"\0" + bytes([1, 0, 8, 0, 10])
                + udh + "您好".encode("utf-16-be") + b"\x15\x01\x00\x05m-1:1")
    assert body == expected
    assert raw[:16] == struct.pack(">IIII", 16 + len(expected), 0x04, 0, 5)
    assert s.decode(raw)[1] == sm


def test_submit_sm_resp_and_deliver_sm_receipt() -> None:
    resp = s.encode(s.MessageIdResp(s.Command.SUBMIT_SM_RESP, "smsc-1"), 5)
    assert resp == struct.pack(">IIII", 23, 0x80000004, 0, 5) + b"smsc-1\0"
    receipt = s.DeliveryReceipt("smsc-1", "DELIVRD", "2601021530", "2601021531")
    assert receipt.text() == (b"id:smsc-1 sub:001 dlvrd:001 submit date:2601021530 "
                              b"done date:2601021531 stat:DELIVRD err:000 text:")
    dlr = s.ShortMessage(s.Command.DELIVER_SM, "", "", receipt.text(), esm_class=0x04)
    _, back = s.decode(s.encode(dlr, 9))
    assert isinstance(back, s.ShortMessage)
    assert s.DeliveryReceipt.parse(back) == receipt
    with_tlv = s.ShortMessage(s.Command.DELIVER_SM, "", "", b"stat:UNDELIV err:001",
                              esm_class=0x04, tlvs=((s.TLV_RECEIPTED_MESSAGE_ID, b"x-9\0"),))
    assert s.DeliveryReceipt.parse(with_tlv).message_id == "x-9"
    with pytest.raises(s.SmppError):
        s.DeliveryReceipt.parse(s.ShortMessage(s.Command.DELIVER_SM, "", "", b"hello"))


def test_header_only_pdus() -> None:
    assert s.encode(s.Empty(s.Command.ENQUIRE_LINK), 3) == struct.pack(">IIII", 16, 0x15, 0, 3)
    assert s.decode(struct.pack(">IIII", 16, 0x80000006, 0, 4))[1] == s.Empty(
        s.Command.UNBIND_RESP)


@pytest.mark.parametrize("cut", [0, 10, 15, 16, 20])
def test_truncated(cut: int) -> None:
    raw = s.encode(s.Bind(s.Command.BIND_TRANSMITTER, "n", "p"), 1)
    with pytest.raises(s.Truncated):
        s.decode(raw[:cut])


def test_malformed_and_oversized() -> None:
    with pytest.raises(s.Oversized):
        s.decode_header(struct.pack(">IIII", s.MAX_PDU_LEN + 1, 4, 0, 1))
    with pytest.raises(s.SmppError):
        s.decode_header(struct.pack(">IIII", 15, 4, 0, 1))
    with pytest.raises(s.SmppError) as unknown:
        s.decode(struct.pack(">IIII", 16, 0x00000103, 0, 1))  # data_sm: not supported
    assert unknown.value.status == s.Status.RINVCMDID
    with pytest.raises(s.SmppError):  # system_id without its NUL within 16 octets
        s.decode_body(0x09, b"x" * 20 + b"\0" + b"\0\0\x34\0\0\0")
    with pytest.raises(s.SmppError):  # trailing octets after enquire_link
        s.decode(struct.pack(">IIII", 17, 0x15, 0, 1) + b"x")
    raw = bytearray(s.encode(s.ShortMessage(s.Command.SUBMIT_SM, "1", "2", b"abc"), 1))
    raw[-4] = 200  # sm_length beyond the body
    with pytest.raises(s.Truncated):
        s.decode(bytes(raw))


@given(st.binary(max_size=120))
def test_random_bytes_never_crash_the_decoder(raw: bytes) -> None:
    with contextlib.suppress(s.SmppError):
        s.decode(raw)


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="\0"), max_size=20),
       st.binary(max_size=254))
def test_short_message_round_trips(addr: str, data: bytes) -> None:
    sm = s.ShortMessage(s.Command.SUBMIT_SM, addr, "13800138000", data, data_coding=8)
    assert s.decode(s.encode(sm, 7))[1] == sm


def test_the_provider_segments_as_the_notifier_counts() -> None:
    """70 characters: one message without UDH; longer: 67-character segments, the same cuts
    the notifier's message log counts (domain/templates.split_segments)."""
    assert segments("测" * 70, 1)[0].udh == b""
    for name in SEED_TEMPLATES:
        text = DEFAULT_TEMPLATES[name]
        parts = segments(text, 3)
        assert [p.payload.decode("utf-16-be") for p in parts] == split_segments(text)
        assert all(len(p.user_data) <= 140 for p in parts)
