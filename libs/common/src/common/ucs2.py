"""UCS-2 short messages: one message holds 70 UTF-16 units (140 octets); a longer text goes as
concatenated segments of 67 units each, every one behind a 6-octet user data header (UDH,
IEI 0x00: 8-bit reference, total, number; 3GPP TS 23.040 9.2.3.24.1). A surrogate pair is
never cut between two segments. Used by the CMPP client (TP_udhi) and the notifier's SMPP
provider (esm_class 0x40)."""

from dataclasses import dataclass

SINGLE_UNITS = 70
SEGMENT_UNITS = 67
MAX_SEGMENTS = 255


@dataclass(frozen=True)
class Segment:
    """One short message's user data: `udh` is empty for a single message."""

    udh: bytes
    payload: bytes
    number: int
    total: int

    @property
    def user_data(self) -> bytes:
        return self.udh + self.payload


def _units(text: str) -> list[bytes]:
    """The text as UTF-16BE code units, a surrogate pair kept as one 4-octet item."""
    return [ch.encode("utf-16-be") for ch in text]


def _chunks(text: str, size: int) -> list[bytes]:
    chunks: list[bytes] = []
    current, units = b"", 0
    for item in _units(text):
        n = len(item) // 2
        if units + n > size:
            chunks.append(current)
            current, units = b"", 0
        current += item
        units += n
    if current or not chunks:
        chunks.append(current)
    return chunks


def segments(text: str, reference: int) -> list[Segment]:
    """The text as UCS-2 messages: one without UDH if it fits in 70 units, else 67-unit
    segments with a concatenation UDH carrying `reference` (0..255)."""
    encoded = text.encode("utf-16-be")
    if len(encoded) // 2 <= SINGLE_UNITS:
        return [Segment(b"", encoded, 1, 1)]
    chunks = _chunks(text, SEGMENT_UNITS)
    if len(chunks) > MAX_SEGMENTS:
        raise ValueError(f"text too long: {len(chunks)} segments (at most {MAX_SEGMENTS})")
    ref, total = reference & 0xFF, len(chunks)
    return [Segment(bytes([0x05, 0x00, 0x03, ref, total, i]), chunk, i, total)
            for i, chunk in enumerate(chunks, start=1)]


def split_udh(user_data: bytes) -> tuple[bytes, bytes]:
    """(udh, payload) of a message sent with the UDH indicator set; ValueError if the header's
    length octet points past the data."""
    if not user_data:
        raise ValueError("empty user data with a UDH indicator")
    length = user_data[0] + 1
    if length > len(user_data):
        raise ValueError("UDH longer than the user data")
    return user_data[:length], user_data[length:]
