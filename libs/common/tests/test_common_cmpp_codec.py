"""The CMPP 2.0 codec against the standard's byte layouts, and every way bytes can be wrong."""

import contextlib
import hashlib
import struct
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.cmpp import codec as c
from common.ucs2 import segments, split_udh


def test_connect_layout_and_authenticator() -> None:
    ts = c.timestamp(datetime(2026, 1, 2, 3, 4, 5))
    assert ts == 102030405  # MMDDHHMMSS as a number: "0102030405"
    auth = c.authenticator_source("901234", "s3cret", ts)
    assert auth == hashlib.md5(b"901234" + b"\0" * 9 + b"s3cret" + b"0102030405").digest()
    raw = c.encode(c.Connect("901234", auth, ts), 7)
    assert len(raw) == 39  # 12 + 6 + 16 + 1 + 4
    assert raw[:12] == struct.pack(">III", 39, 0x00000001, 7)
    assert raw[12:18] == b"901234"
    assert raw[18:34] == auth
    assert raw[34] == 0x20
    assert raw[35:39] == (102030405).to_bytes(4, "big")
    assert c.decode(raw) == (7, c.Connect("901234", auth, ts))


def test_short_source_addr_is_nul_padded() -> None:
    raw = c.encode(c.Connect("9012", b"\1" * 16, 0), 1)
    assert raw[12:18] == b"9012\0\0"
    _, pdu = c.decode(raw)
    assert isinstance(pdu, c.Connect) and pdu.source_addr == "9012"


def test_connect_resp_layout_and_ismg_authenticator() -> None:
    auth_src = b"\x11" * 16
    ismg = c.authenticator_ismg(0, auth_src, "s3cret")
    assert ismg == hashlib.md5(b"\0" + auth_src + b"s3cret").digest()
    raw = c.encode(c.ConnectResp(0, ismg), 7)
    assert raw == struct.pack(">III", 30, 0x80000001, 7) + b"\0" + ismg + b"\x20"
    assert c.decode(raw) == (7, c.ConnectResp(0, ismg))


def submit() -> c.Submit:
    return c.Submit(("13800138000", "13900139000"), "会议通知".encode("utf-16-be"),
                    c.MsgFmt.UCS2, src_id="10657001", msg_src="901234",
                    service_id="MAS", registered_delivery=1)


def test_submit_layout() -> None:
    raw = c.encode(submit(), 9)
    body = raw[12:]
    # 8+1+1+1+1+10+1+21+1+1+1+6+2+6+17+17+21 = 116 fixed octets, then DestUsr_tl
    assert len(raw) == 12 + 116 + 1 + 2 * 21 + 1 + 8 + 8
    assert raw[4:8] == b"\0\0\0\x04"
    assert body[0:8] == b"\0" * 8  # Msg_Id, empty from the SP
    assert body[8:12] == bytes([1, 1, 1, 0])  # Pk_total, Pk_number, Registered, Msg_level
    assert body[12:22] == b"MAS" + b"\0" * 7
    assert body[46] == 8  # Msg_Fmt after Fee_UserType(1), Fee_terminal_Id(21), pid, udhi
    assert body[47:53] == b"901234"  # Msg_src
    assert body[95:116] == b"10657001".ljust(21, b"\0")  # Src_Id after At_Time
    assert body[116] == 2
    assert body[117:138] == b"13800138000".ljust(21, b"\0")
    assert body[159] == 8  # Msg_Length
    assert body[160:168] == "会议通知".encode("utf-16-be")
    assert c.decode(raw) == (9, submit())


def test_submit_resp_deliver_and_status_report() -> None:
    assert c.encode(c.SubmitResp(0x0102030405060708, 9), 3) == (
        struct.pack(">III", 21, 0x80000004, 3) + bytes(range(1, 9)) + b"\x09")
    report = c.StatusReport(42, "DELIVRD", "2601021530", "2601021531", "13800138000", 5)
    content = report.encode()
    assert len(content) == c.STATUS_REPORT_LEN
    deliver = c.Deliver(42, "10657001", "13800138000", content, registered_delivery=1)
    raw = c.encode(deliver, 11)
    # 8+21+10+1+1+1+21+1+1+60+8
    assert len(raw) == 12 + 133
    _, back = c.decode(raw)
    assert isinstance(back, c.Deliver) and back.status_report() == report
    assert c.encode(c.DeliverResp(42, 0), 11)[4:8] == b"\x80\0\0\x05"


def test_bodiless_pdus() -> None:
    assert c.encode(c.ActiveTest(), 1) == struct.pack(">III", 12, 8, 1)
    assert c.encode(c.ActiveTestResp(), 1) == struct.pack(">III", 13, 0x80000008, 1) + b"\0"
    assert c.encode(c.Terminate(), 2) == struct.pack(">III", 12, 2, 2)
    assert c.decode(struct.pack(">III", 12, 0x80000002, 2)) == (2, c.TerminateResp())


def test_msg_id_bit_layout() -> None:
    mid = c.msg_id(datetime(2026, 12, 31, 23, 59, 58), 0x3FFFFF, 0xFFFF)
    assert mid >> 60 == 12 and (mid >> 55) & 0x1F == 31 and (mid >> 50) & 0x1F == 23
    assert (mid >> 44) & 0x3F == 59 and (mid >> 38) & 0x3F == 58
    assert (mid >> 16) & 0x3FFFFF == 0x3FFFFF and mid & 0xFFFF == 0xFFFF


@pytest.mark.parametrize("cut", [0, 5, 11, 12, 20, 38])
def test_truncated_pdus_are_refused(cut: int) -> None:
    raw = c.encode(c.Connect("901234", b"\0" * 16, 1), 1)
    with pytest.raises(c.Truncated):
        c.decode(raw[:cut])


def test_body_shorter_than_its_fields_is_truncated() -> None:
    raw = c.encode(submit(), 1)
    short = struct.pack(">III", len(raw) - 20, 4, 1) + raw[12:-20]
    with pytest.raises(c.Truncated):
        c.decode(short)


def test_trailing_octets_are_malformed() -> None:
    raw = c.encode(c.ActiveTest(), 1) + b"x"
    with pytest.raises(c.CmppError):
        c.decode(struct.pack(">III", 13, 8, 1) + raw[12:])


def test_oversized_and_undersized_lengths() -> None:
    with pytest.raises(c.Oversized):
        c.decode_header(struct.pack(">III", c.MAX_PDU_LEN + 1, 4, 1))
    with pytest.raises(c.Oversized):
        c.decode_header(struct.pack(">III", 0xFFFFFFFF, 4, 1))
    with pytest.raises(c.CmppError):
        c.decode_header(struct.pack(">III", 11, 4, 1))


def test_unknown_command_and_bad_fields() -> None:
    with pytest.raises(c.CmppError, match="unsupported"):
        c.decode(struct.pack(">III", 12, 0x00000006, 1))  # CMPP_QUERY: not supported
    raw = bytearray(c.encode(submit(), 1))
    raw[12 + 116] = 0  # DestUsr_tl 0
    with pytest.raises(c.CmppError):
        c.decode(bytes(raw))
    raw = bytearray(c.encode(submit(), 1))
    raw[12 + 47] = 0xFF  # non-ASCII Msg_src
    with pytest.raises(c.CmppError, match="non-ASCII"):
        c.decode(bytes(raw))
    with pytest.raises(c.CmppError):
        c.StatusReport.decode(b"\0" * 59)


def test_encoding_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        c.encode(c.Connect("1234567", b"\0" * 16, 0), 1)
    with pytest.raises(ValueError):
        c.encode(c.Submit((), b"x"), 1)
    with pytest.raises(ValueError):
        c.encode(c.Submit(("1",), b"x" * 256), 1)


@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoder(raw: bytes) -> None:
    with contextlib.suppress(c.CmppError):
        c.decode(raw)


@given(st.lists(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), min_size=1, max_size=5),
       st.binary(max_size=140), st.integers(0, 0xFFFFFFFF))
def test_submit_round_trips(dests: list[str], content: bytes, seq: int) -> None:
    pdu = c.Submit(tuple(dests), content, src_id="106", msg_src="1")
    assert c.decode(c.encode(pdu, seq)) == (seq, pdu)


def test_ucs2_segmentation() -> None:
    assert len(segments("好" * 70, 1)) == 1
    parts = segments("好" * 71, 7)
    assert [len(p.payload) // 2 for p in parts] == [67, 4]
    assert parts[0].udh == bytes([5, 0, 3, 7, 2, 1]) and parts[1].udh[-1] == 2
    assert split_udh(parts[1].user_data) == (parts[1].udh, parts[1].payload)
    # a surrogate pair is never cut: 66 units then a 2-unit emoji start the next segment
    parts = segments("好" * 66 + "😀" + "好" * 10, 1)
    assert [len(p.payload) // 2 for p in parts] == [66, 12]
    assert "".join(p.payload.decode("utf-16-be") for p in parts) == "好" * 66 + "😀" + "好" * 10
