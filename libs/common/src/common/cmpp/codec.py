"""CMPP 2.0 PDUs, encoded and decoded as the standard lays them out (pure, no I/O).

Every PDU is a 12-octet header — Total_Length, Command_Id, Sequence_Id, unsigned 32-bit big
endian — and a body of fixed-width fields: integers big endian, Octet Strings left-aligned
and padded with NUL on the right. Only what the industry gateway and a MAS client use is
here: CONNECT, SUBMIT, DELIVER (and its status report), ACTIVE_TEST, TERMINATE and their
responses; QUERY, CANCEL and FWD are not supported (a peer sending them is closed)."""

import hashlib
import struct
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

VERSION = 0x20  # CMPP 2.0: high nibble 2, low nibble 0
HEADER = struct.Struct(">III")
HEADER_LEN = HEADER.size
# The largest well-formed SUBMIT (100 destinations, 255 octets of content) is 2,497 octets;
# anything announcing more is refused before its body is read.
MAX_PDU_LEN = 3000
MAX_DESTINATIONS = 100  # DestUsr_tl, as the standard bounds it
STATUS_REPORT_LEN = 60


class Command(IntEnum):
    CONNECT = 0x00000001
    CONNECT_RESP = 0x80000001
    TERMINATE = 0x00000002
    TERMINATE_RESP = 0x80000002
    SUBMIT = 0x00000004
    SUBMIT_RESP = 0x80000004
    DELIVER = 0x00000005
    DELIVER_RESP = 0x80000005
    ACTIVE_TEST = 0x00000008
    ACTIVE_TEST_RESP = 0x80000008


class ConnectStatus(IntEnum):
    """CMPP_CONNECT_RESP Status (standard: 0..4; 5 and up "other errors")."""

    OK = 0
    BAD_STRUCTURE = 1
    BAD_SOURCE_ADDR = 2  # unknown enterprise
    AUTH_FAILED = 3  # wrong shared secret
    VERSION_TOO_HIGH = 4
    TOO_MANY_CONNECTIONS = 5  # ours, in the "other" range: the enterprise's connection bound


class SubmitResult(IntEnum):
    """CMPP_SUBMIT_RESP Result (standard: 0..8; 9 and up "other errors", ours below)."""

    OK = 0
    BAD_STRUCTURE = 1
    BAD_COMMAND = 2
    DUPLICATE_SEQUENCE = 3
    BAD_LENGTH = 4
    BAD_FEE_CODE = 5
    TOO_LONG = 6  # content above 140 octets
    BAD_SERVICE_ID = 7
    FLOW_CONTROL = 8  # window full or the enterprise's message rate exceeded
    # Ours: the enterprise's product is blocked at the industry gateway (欠费停用). The
    # standard has no code for it; 9 is the first of its "other errors", so a MAS server
    # that knows only the standard still sees a refusal that is not worth retrying at once.
    PRODUCT_BLOCKED = 9
    UNAVAILABLE = 10  # ours: the gateway could not decide (its database); retry later


class MsgFmt(IntEnum):
    ASCII = 0
    BINARY = 4
    UCS2 = 8
    GB = 15


class CmppError(ValueError):
    """Bytes that are not a CMPP 2.0 PDU: a protocol error, never a crash."""


class Truncated(CmppError):
    pass


class Oversized(CmppError):
    pass


# --- fields ---------------------------------------------------------------------------------


def octets(value: str, width: int) -> bytes:
    """An Octet String field: ASCII, NUL-padded on the right to `width`."""
    raw = value.encode("ascii")
    if len(raw) > width:
        raise ValueError(f"{value!r} is longer than its {width}-octet field")
    return raw.ljust(width, b"\0")


def _text(raw: bytes) -> str:
    try:
        return raw.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError as exc:
        raise CmppError(f"non-ASCII octets in a text field: {raw!r}") from exc


class _Reader:
    """Reads a body field by field; running past its end is a truncated PDU."""

    def __init__(self, body: bytes) -> None:
        self._body, self._at = body, 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._body):
            raise Truncated(f"body ends at {len(self._body)}, a field needs {self._at + n}")
        out = self._body[self._at:self._at + n]
        self._at += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def text(self, n: int) -> str:
        return _text(self.take(n))

    def end(self) -> None:
        if self._at != len(self._body):
            raise CmppError(f"{len(self._body) - self._at} octets after the last field")


# --- authenticators, timestamps, Msg_Id -----------------------------------------------------


def timestamp(moment: datetime) -> int:
    """The CONNECT Timestamp: MMDDHHMMSS as a decimal number (local time of the sender)."""
    return int(moment.strftime("%m%d%H%M%S"))


def authenticator_source(source_addr: str, secret: str, ts: int) -> bytes:
    """MD5(Source_Addr + 9 octets of 0 + shared secret + timestamp "MMDDHHMMSS")."""
    return hashlib.md5(source_addr.encode("ascii") + b"\0" * 9 + secret.encode("utf-8")
                       + f"{ts:010d}".encode("ascii")).digest()


def authenticator_ismg(status: int, auth_source: bytes, secret: str) -> bytes:
    """MD5(Status + AuthenticatorSource + shared secret): the gateway proves it knows it too."""
    return hashlib.md5(bytes([status]) + auth_source + secret.encode("utf-8")).digest()


def msg_id(moment: datetime, gateway_code: int, sequence: int) -> int:
    """The 64-bit Msg_Id: month(4) day(5) hour(5) minute(6) second(6) gateway code(22)
    sequence(16), most significant first."""
    return ((moment.month << 60) | (moment.day << 55) | (moment.hour << 50)
            | (moment.minute << 44) | (moment.second << 38)
            | ((gateway_code & 0x3FFFFF) << 16) | (sequence & 0xFFFF))


# --- PDUs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connect:
    source_addr: str
    authenticator: bytes
    timestamp: int
    version: int = VERSION
    command = Command.CONNECT

    def body(self) -> bytes:
        if len(self.authenticator) != 16:
            raise ValueError("AuthenticatorSource is 16 octets")
        return (octets(self.source_addr, 6) + self.authenticator + bytes([self.version])
                + self.timestamp.to_bytes(4, "big"))

    @classmethod
    def parse(cls, r: _Reader) -> "Connect":
        return cls(r.text(6), r.take(16), version=r.u8(), timestamp=r.u32())


@dataclass(frozen=True)
class ConnectResp:
    status: int
    authenticator: bytes = b"\0" * 16
    version: int = VERSION
    command = Command.CONNECT_RESP

    def body(self) -> bytes:
        return bytes([self.status]) + self.authenticator.ljust(16, b"\0") + bytes([self.version])

    @classmethod
    def parse(cls, r: _Reader) -> "ConnectResp":
        return cls(r.u8(), r.take(16), r.u8())


@dataclass(frozen=True)
class Submit:
    """CMPP_SUBMIT as MAS servers send it; the fee fields are carried, not interpreted."""

    dest_terminal_ids: tuple[str, ...]
    content: bytes
    msg_fmt: int = MsgFmt.UCS2
    src_id: str = ""
    msg_src: str = ""
    service_id: str = ""
    registered_delivery: int = 0
    pk_total: int = 1
    pk_number: int = 1
    tp_udhi: int = 0
    msg_id: int = 0
    msg_level: int = 0
    fee_user_type: int = 0
    fee_terminal_id: str = ""
    tp_pid: int = 0
    fee_type: str = "01"
    fee_code: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    reserve: bytes = b"\0" * 8
    command = Command.SUBMIT

    def body(self) -> bytes:
        n = len(self.dest_terminal_ids)
        if not 1 <= n <= MAX_DESTINATIONS:
            raise ValueError(f"DestUsr_tl {n}: 1..{MAX_DESTINATIONS}")
        if len(self.content) > 255:
            raise ValueError("Msg_Content is at most 255 octets (Msg_Length is one octet)")
        return b"".join([
            self.msg_id.to_bytes(8, "big"),
            bytes([self.pk_total, self.pk_number, self.registered_delivery, self.msg_level]),
            octets(self.service_id, 10), bytes([self.fee_user_type]),
            octets(self.fee_terminal_id, 21),
            bytes([self.tp_pid, self.tp_udhi, self.msg_fmt]), octets(self.msg_src, 6),
            octets(self.fee_type, 2), octets(self.fee_code, 6),
            octets(self.valid_time, 17), octets(self.at_time, 17), octets(self.src_id, 21),
            bytes([n]), *(octets(d, 21) for d in self.dest_terminal_ids),
            bytes([len(self.content)]), self.content, self.reserve.ljust(8, b"\0")[:8],
        ])

    @classmethod
    def parse(cls, r: _Reader) -> "Submit":
        mid = r.u64()
        pk_total, pk_number, registered, level = r.u8(), r.u8(), r.u8(), r.u8()
        service_id, fee_user_type, fee_terminal = r.text(10), r.u8(), r.text(21)
        tp_pid, tp_udhi, fmt = r.u8(), r.u8(), r.u8()
        msg_src, fee_type, fee_code = r.text(6), r.text(2), r.text(6)
        valid, at, src = r.text(17), r.text(17), r.text(21)
        n = r.u8()
        if not 1 <= n <= MAX_DESTINATIONS:
            raise CmppError(f"DestUsr_tl {n}: 1..{MAX_DESTINATIONS}")
        dests = tuple(r.text(21) for _ in range(n))
        content = r.take(r.u8())
        return cls(dests, content, fmt, src, msg_src, service_id, registered, pk_total,
                   pk_number, tp_udhi, mid, level, fee_user_type, fee_terminal, tp_pid,
                   fee_type, fee_code, valid, at, r.take(8))


@dataclass(frozen=True)
class SubmitResp:
    msg_id: int
    result: int
    command = Command.SUBMIT_RESP

    def body(self) -> bytes:
        return self.msg_id.to_bytes(8, "big") + bytes([self.result])

    @classmethod
    def parse(cls, r: _Reader) -> "SubmitResp":
        return cls(r.u64(), r.u8())


@dataclass(frozen=True)
class StatusReport:
    """The Msg_Content of a DELIVER with Registered_Delivery 1 (60 octets)."""

    msg_id: int
    stat: str  # DELIVRD, EXPIRED, UNDELIV, REJECTD, ...
    submit_time: str  # YYMMDDHHMM
    done_time: str
    dest_terminal_id: str
    smsc_sequence: int = 0

    def encode(self) -> bytes:
        return (self.msg_id.to_bytes(8, "big") + octets(self.stat, 7)
                + octets(self.submit_time, 10) + octets(self.done_time, 10)
                + octets(self.dest_terminal_id, 21) + self.smsc_sequence.to_bytes(4, "big"))

    @classmethod
    def decode(cls, content: bytes) -> "StatusReport":
        r = _Reader(content)
        report = cls(r.u64(), r.text(7), r.text(10), r.text(10), r.text(21), r.u32())
        r.end()
        return report


@dataclass(frozen=True)
class Deliver:
    msg_id: int
    dest_id: str
    src_terminal_id: str
    content: bytes
    registered_delivery: int = 0  # 1: content is a StatusReport
    service_id: str = ""
    msg_fmt: int = MsgFmt.ASCII
    tp_pid: int = 0
    tp_udhi: int = 0
    reserve: bytes = b"\0" * 8
    command = Command.DELIVER

    def body(self) -> bytes:
        if len(self.content) > 255:
            raise ValueError("Msg_Content is at most 255 octets")
        return b"".join([
            self.msg_id.to_bytes(8, "big"), octets(self.dest_id, 21),
            octets(self.service_id, 10), bytes([self.tp_pid, self.tp_udhi, self.msg_fmt]),
            octets(self.src_terminal_id, 21), bytes([self.registered_delivery]),
            bytes([len(self.content)]), self.content, self.reserve.ljust(8, b"\0")[:8],
        ])

    @classmethod
    def parse(cls, r: _Reader) -> "Deliver":
        mid, dest, service = r.u64(), r.text(21), r.text(10)
        tp_pid, tp_udhi, fmt = r.u8(), r.u8(), r.u8()
        src, registered = r.text(21), r.u8()
        content = r.take(r.u8())
        return cls(mid, dest, src, content, registered, service, fmt, tp_pid, tp_udhi,
                   r.take(8))

    def status_report(self) -> StatusReport:
        if self.registered_delivery != 1:
            raise CmppError("not a status report (Registered_Delivery is not 1)")
        return StatusReport.decode(self.content)


@dataclass(frozen=True)
class DeliverResp:
    msg_id: int
    result: int = 0
    command = Command.DELIVER_RESP

    def body(self) -> bytes:
        return self.msg_id.to_bytes(8, "big") + bytes([self.result])

    @classmethod
    def parse(cls, r: _Reader) -> "DeliverResp":
        return cls(r.u64(), r.u8())


@dataclass(frozen=True)
class ActiveTest:
    command = Command.ACTIVE_TEST

    def body(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, r: _Reader) -> "ActiveTest":
        return cls()


@dataclass(frozen=True)
class ActiveTestResp:
    reserved: int = 0
    command = Command.ACTIVE_TEST_RESP

    def body(self) -> bytes:
        return bytes([self.reserved])

    @classmethod
    def parse(cls, r: _Reader) -> "ActiveTestResp":
        return cls(r.u8())


@dataclass(frozen=True)
class Terminate:
    command = Command.TERMINATE

    def body(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, r: _Reader) -> "Terminate":
        return cls()


@dataclass(frozen=True)
class TerminateResp:
    command = Command.TERMINATE_RESP

    def body(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, r: _Reader) -> "TerminateResp":
        return cls()


Pdu = (Connect | ConnectResp | Submit | SubmitResp | Deliver | DeliverResp | ActiveTest
       | ActiveTestResp | Terminate | TerminateResp)
_PARSERS: dict[int, type[Pdu]] = {
    int(cls.command): cls for cls in (
        Connect, ConnectResp, Submit, SubmitResp, Deliver, DeliverResp, ActiveTest,
        ActiveTestResp, Terminate, TerminateResp)
}


@dataclass(frozen=True)
class Header:
    total_length: int
    command_id: int
    sequence_id: int
    known: bool = field(default=True)


def encode(pdu: Pdu, sequence_id: int) -> bytes:
    body = pdu.body()
    return HEADER.pack(HEADER_LEN + len(body), int(pdu.command), sequence_id) + body


def decode_header(raw: bytes, max_len: int = MAX_PDU_LEN) -> Header:
    """The 12-octet header; a length below the header's own or above `max_len` is refused
    before anything more is read."""
    if len(raw) < HEADER_LEN:
        raise Truncated(f"header of {len(raw)} octets (12 needed)")
    total, command_id, seq = HEADER.unpack(raw[:HEADER_LEN])
    if total < HEADER_LEN:
        raise CmppError(f"Total_Length {total} is shorter than the header")
    if total > max_len:
        raise Oversized(f"Total_Length {total} above {max_len}")
    return Header(total, command_id, seq, command_id in _PARSERS)


def decode_body(command_id: int, body: bytes) -> Pdu:
    """A body whose fields must fill it exactly: shorter is truncated, longer is malformed."""
    parser = _PARSERS.get(command_id)
    if parser is None:
        raise CmppError(f"unsupported Command_Id 0x{command_id:08x}")
    r = _Reader(body)
    pdu = parser.parse(r)
    r.end()
    return pdu


def decode(raw: bytes, max_len: int = MAX_PDU_LEN) -> tuple[int, Pdu]:
    """(Sequence_Id, PDU) of exactly one whole PDU."""
    header = decode_header(raw, max_len)
    if len(raw) != header.total_length:
        cls = Truncated if len(raw) < header.total_length else CmppError
        raise cls(f"{len(raw)} octets, Total_Length says {header.total_length}")
    return header.sequence_id, decode_body(header.command_id, raw[HEADER_LEN:])
