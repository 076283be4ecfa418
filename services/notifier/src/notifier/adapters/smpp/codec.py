"""SMPP 3.4 PDUs (pure, no I/O): the 16-octet header — command_length, command_id,
command_status, sequence_number, unsigned 32-bit big endian — and the bodies the notifier and
the simulated SMSC use: bind_transmitter/transceiver, submit_sm, deliver_sm, enquire_link,
unbind, generic_nack and their responses. C-Octet Strings are NUL-terminated with the
specification's maximum lengths; optional parameters (TLVs) are kept as (tag, value) pairs."""

import struct
from dataclasses import dataclass, field
from enum import IntEnum

HEADER = struct.Struct(">IIII")
HEADER_LEN = HEADER.size
# short_message is at most 254 octets; with the fixed fields and a few TLVs a submit_sm stays
# well under 1 KB. message_payload (up to 64 KB) is not supported, so 4 KB bounds every PDU.
MAX_PDU_LEN = 4096
INTERFACE_VERSION = 0x34


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class Status(IntEnum):
    ROK = 0x00
    RINVMSGLEN = 0x01
    RINVCMDLEN = 0x02
    RINVCMDID = 0x03
    RINVBNDSTS = 0x04  # wrong bind state for the command
    RALYBND = 0x05
    RSYSERR = 0x08
    RINVSRCADR = 0x0A
    RINVDSTADR = 0x0B
    RBINDFAIL = 0x0D
    RINVPASWD = 0x0E
    RINVSYSID = 0x0F
    RSUBMITFAIL = 0x45
    RINVESMCLASS = 0x43
    RTHROTTLED = 0x58
    RX_T_APPN = 0x64  # temporary application error: the sender retries
    RUNKNOWNERR = 0xFF


ESM_UDHI = 0x40  # esm_class: the short message starts with a UDH
ESM_DELIVERY_RECEIPT = 0x04  # esm_class of a deliver_sm that is an SMSC delivery receipt
DATA_CODING_UCS2 = 0x08
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
# Vendor-specific range (0x1400-0x3FFF): the submitter's reference, on which the simulated
# SMSC detects a resubmission (real SMSCs ignore an unknown TLV).
TLV_CLIENT_REF = 0x1501


class SmppError(ValueError):
    """Bytes that are not an SMPP 3.4 PDU; `status` is what to answer (generic_nack)."""

    def __init__(self, message: str, status: int = Status.RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


class Truncated(SmppError):
    pass


class Oversized(SmppError):
    pass


class _Reader:
    def __init__(self, body: bytes) -> None:
        self._body, self._at = body, 0

    @property
    def left(self) -> int:
        return len(self._body) - self._at

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._body):
            raise Truncated(f"body ends at {len(self._body)}, a field needs {self._at + n}")
        out = self._body[self._at:self._at + n]
        self._at += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def cstr(self, max_len: int) -> str:
        """A C-Octet String of at most `max_len` octets including its NUL."""
        end = self._body.find(b"\0", self._at, self._at + max_len)
        if end < 0:
            if self._at + max_len > len(self._body) and b"\0" not in self._body[self._at:]:
                raise Truncated("a C-Octet String runs to the end of the body")
            raise SmppError(f"a C-Octet String longer than {max_len - 1}", Status.RINVMSGLEN)
        raw = self._body[self._at:end]
        self._at = end + 1
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise SmppError(f"non-ASCII octets in a C-Octet String: {raw!r}",
                            Status.RINVMSGLEN) from exc

    def tlvs(self) -> tuple[tuple[int, bytes], ...]:
        out = []
        while self.left:
            tag, length = self.u16(), self.u16()
            out.append((tag, self.take(length)))
        return tuple(out)


def cstr(value: str, max_len: int) -> bytes:
    raw = value.encode("ascii")
    if len(raw) >= max_len:
        raise ValueError(f"{value!r} does not fit a {max_len}-octet C-Octet String")
    return raw + b"\0"


def tlv_bytes(tlvs: tuple[tuple[int, bytes], ...]) -> bytes:
    return b"".join(tag.to_bytes(2, "big") + len(v).to_bytes(2, "big") + v for tag, v in tlvs)


@dataclass(frozen=True)
class Bind:
    command: Command
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def body(self) -> bytes:
        return (cstr(self.system_id, 16) + cstr(self.password, 9) + cstr(self.system_type, 13)
                + bytes([self.interface_version, self.addr_ton, self.addr_npi])
                + cstr(self.address_range, 41))

    @classmethod
    def parse(cls, command: Command, r: _Reader) -> "Bind":
        return cls(command, r.cstr(16), r.cstr(9), r.cstr(13), r.u8(), r.u8(), r.u8(),
                   r.cstr(41))


@dataclass(frozen=True)
class BindResp:
    command: Command
    system_id: str = ""

    def body(self) -> bytes:
        return cstr(self.system_id, 16)

    @classmethod
    def parse(cls, command: Command, r: _Reader) -> "BindResp":
        found = cls(command, r.cstr(16) if r.left else "")
        r.tlvs()  # sc_interface_version may follow
        return found


@dataclass(frozen=True)
class ShortMessage:
    """submit_sm and deliver_sm: the same layout (deliver_sm's scheduling fields are NULL)."""

    command: Command
    source_addr: str
    destination_addr: str
    short_message: bytes
    esm_class: int = 0
    data_coding: int = 0
    registered_delivery: int = 0
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    replace_if_present_flag: int = 0
    sm_default_msg_id: int = 0
    tlvs: tuple[tuple[int, bytes], ...] = field(default=())

    def body(self) -> bytes:
        if len(self.short_message) > 254:
            raise ValueError("short_message is at most 254 octets")
        return b"".join([
            cstr(self.service_type, 6), bytes([self.source_addr_ton, self.source_addr_npi]),
            cstr(self.source_addr, 21), bytes([self.dest_addr_ton, self.dest_addr_npi]),
            cstr(self.destination_addr, 21),
            bytes([self.esm_class, self.protocol_id, self.priority_flag]),
            cstr(self.schedule_delivery_time, 17), cstr(self.validity_period, 17),
            bytes([self.registered_delivery, self.replace_if_present_flag, self.data_coding,
                   self.sm_default_msg_id, len(self.short_message)]),
            self.short_message, tlv_bytes(self.tlvs)])

    @classmethod
    def parse(cls, command: Command, r: _Reader) -> "ShortMessage":
        service_type = r.cstr(6)
        src_ton, src_npi, src = r.u8(), r.u8(), r.cstr(21)
        dst_ton, dst_npi, dst = r.u8(), r.u8(), r.cstr(21)
        esm, pid, priority = r.u8(), r.u8(), r.u8()
        schedule, validity = r.cstr(17), r.cstr(17)
        registered, replace, coding, default_id = r.u8(), r.u8(), r.u8(), r.u8()
        length = r.u8()
        if length > 254:
            raise SmppError(f"sm_length {length} above 254", Status.RINVMSGLEN)
        sm = r.take(length)
        return cls(command, src, dst, sm, esm, coding, registered, service_type, src_ton,
                   src_npi, dst_ton, dst_npi, pid, priority, schedule, validity, replace,
                   default_id, r.tlvs())

    def tlv(self, tag: int) -> bytes | None:
        return next((v for t, v in self.tlvs if t == tag), None)


@dataclass(frozen=True)
class MessageIdResp:
    """submit_sm_resp (the SMSC's message id) and deliver_sm_resp (message_id NULL)."""

    command: Command
    message_id: str = ""

    def body(self) -> bytes:
        return cstr(self.message_id, 65)

    @classmethod
    def parse(cls, command: Command, r: _Reader) -> "MessageIdResp":
        # An error response may carry no body at all.
        return cls(command, r.cstr(65) if r.left else "")


@dataclass(frozen=True)
class Empty:
    """enquire_link, unbind, generic_nack and their responses: a header alone."""

    command: Command

    def body(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, command: Command, r: _Reader) -> "Empty":
        return cls(command)


Pdu = Bind | BindResp | ShortMessage | MessageIdResp | Empty
_PARSERS: dict[int, type[Pdu]] = {
    Command.BIND_RECEIVER: Bind, Command.BIND_TRANSMITTER: Bind,
    Command.BIND_TRANSCEIVER: Bind, Command.BIND_RECEIVER_RESP: BindResp,
    Command.BIND_TRANSMITTER_RESP: BindResp, Command.BIND_TRANSCEIVER_RESP: BindResp,
    Command.SUBMIT_SM: ShortMessage, Command.DELIVER_SM: ShortMessage,
    Command.SUBMIT_SM_RESP: MessageIdResp, Command.DELIVER_SM_RESP: MessageIdResp,
    Command.ENQUIRE_LINK: Empty, Command.ENQUIRE_LINK_RESP: Empty, Command.UNBIND: Empty,
    Command.UNBIND_RESP: Empty, Command.GENERIC_NACK: Empty,
}


@dataclass(frozen=True)
class Header:
    length: int
    command_id: int
    status: int
    sequence: int


def encode(pdu: Pdu, sequence: int, status: int = Status.ROK) -> bytes:
    body = pdu.body()
    return HEADER.pack(HEADER_LEN + len(body), int(pdu.command), status, sequence) + body


def decode_header(raw: bytes, max_len: int = MAX_PDU_LEN) -> Header:
    if len(raw) < HEADER_LEN:
        raise Truncated(f"header of {len(raw)} octets (16 needed)")
    length, command_id, status, seq = HEADER.unpack(raw[:HEADER_LEN])
    if length < HEADER_LEN:
        raise SmppError(f"command_length {length} shorter than the header")
    if length > max_len:
        raise Oversized(f"command_length {length} above {max_len}")
    return Header(length, command_id, status, seq)


def decode_body(command_id: int, body: bytes, status: int = Status.ROK) -> Pdu:
    """A body filled exactly by its fields (TLVs take the rest of submit_sm/deliver_sm). An
    error response (status ≠ 0) may have no body."""
    parser = _PARSERS.get(command_id)
    if parser is None:
        raise SmppError(f"unsupported command_id 0x{command_id:08x}", Status.RINVCMDID)
    command = Command(command_id)
    if status != Status.ROK and not body:
        return Empty(command) if parser is Empty else (
            BindResp(command) if parser is BindResp else MessageIdResp(command))
    r = _Reader(body)
    pdu = parser.parse(command, r)
    if r.left:
        raise SmppError(f"{r.left} octets after the last field")
    return pdu


def decode(raw: bytes, max_len: int = MAX_PDU_LEN) -> tuple[Header, Pdu]:
    header = decode_header(raw, max_len)
    if len(raw) != header.length:
        cls = Truncated if len(raw) < header.length else SmppError
        raise cls(f"{len(raw)} octets, command_length says {header.length}")
    return header, decode_body(header.command_id, raw[HEADER_LEN:], header.status)


# --- delivery receipts (SMPP 3.4 Appendix B) ---------------------------------------------


@dataclass(frozen=True)
class DeliveryReceipt:
    message_id: str
    stat: str  # DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD
    submit_date: str = ""  # YYMMDDhhmm
    done_date: str = ""
    err: str = "000"

    def text(self) -> bytes:
        return (f"id:{self.message_id} sub:001 dlvrd:{'001' if self.stat == 'DELIVRD' else '000'}"
                f" submit date:{self.submit_date} done date:{self.done_date} stat:{self.stat}"
                f" err:{self.err} text:").encode("ascii")

    @classmethod
    def parse(cls, sm: ShortMessage) -> "DeliveryReceipt":
        """The receipt in a deliver_sm; the TLVs (receipted_message_id) win over the text."""
        try:
            text = sm.short_message.decode("ascii")
        except UnicodeDecodeError as exc:
            raise SmppError("a delivery receipt's text is not ASCII") from exc
        fields: dict[str, str] = {}
        for key in ("id", "submit date", "done date", "stat", "err"):
            at = text.find(key + ":")
            if at >= 0:
                value = text[at + len(key) + 1:].split(" ", 1)[0]
                fields[key] = value
        tlv_id = sm.tlv(TLV_RECEIPTED_MESSAGE_ID)
        message_id = tlv_id.rstrip(b"\0").decode("ascii", "replace") if tlv_id else \
            fields.get("id", "")
        if not message_id or "stat" not in fields:
            raise SmppError("a delivery receipt without id or stat")
        return cls(message_id, fields["stat"], fields.get("submit date", ""),
                   fields.get("done date", ""), fields.get("err", "000"))
