"""Several messages in one outbox row (`packed`) and read back (`messages`, with their keys
`keyed_messages`): each key's messages keep their order and their bytes; a row of one
message stays as it was; a group of mixed keys publishes each message with its envelope's
key."""

from datetime import UTC, datetime
from typing import ClassVar

import msgspec
import pytest

from common.envelope import Contract, wrap
from common.outbox import MIXED_KEYS, OutboxRow, envelope_row, keyed_messages, messages, packed


class Staged(Contract):
    event_type: ClassVar[str] = "test.staged"
    topic: ClassVar[str] = "test.staged.v1"
    n: int
    note: str = ""


def row(n: int, key: str, topic: str = "t", note: str = "") -> OutboxRow:
    return envelope_row(topic, wrap(Staged(n=n, note=note), key=key, source="test",
                                    occurred_at=datetime(2026, 11, 30, tzinfo=UTC)))


def ns(r: OutboxRow) -> list[int]:
    return [msgspec.json.decode(m)["payload"]["n"] for m in messages(r.payload)]  # type: ignore[arg-type]


def test_a_groups_messages_keep_their_bytes_exactly_and_a_shared_key_is_the_rows() -> None:
    chinese = [row(6, "p9", note='停机 "A" \\ 通知'), row(7, "p9", note="开机")]
    [together] = packed(chinese)
    assert together.key == "p9" and together.event_id == chinese[0].event_id
    assert messages(together.payload) == [r.payload for r in chinese]  # type: ignore[arg-type]


def test_rows_of_other_topics_are_never_put_together() -> None:
    rows = [row(1, "p1", topic="t1"), row(2, "p1", topic="t2"), row(3, "p1", topic="t3")]
    assert packed(rows) == rows
    assert packed([]) == []


def test_a_rows_payload_that_is_one_envelope_is_one_message() -> None:
    r = row(1, "p1")
    assert messages(r.payload) == [r.payload]  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [b'[{"a":1},', b"[]", b"[1,2]", b'[{"a":1},"b"]'])
def test_a_malformed_group_is_an_error_not_a_guess(payload: bytes) -> None:
    with pytest.raises(ValueError):
        messages(payload)


def test_a_groups_messages_go_with_the_rows_key_or_of_mixed_keys_each_with_its_own() -> None:
    one = packed([row(1, "p1"), row(2, "p1")])[0]
    assert [k for k, _ in keyed_messages(b"p1", one.payload)] == [b"p1", b"p1"]  # type: ignore[arg-type]
    # As the sweep writes them: consecutive messages of one topic, whatever their keys.
    rows = [row(1, "A1"), row(2, "A2", note="停机"), row(3, "A1")]
    mixed = b"[" + b",".join(r.payload for r in rows) + b"]"  # type: ignore[misc]
    assert keyed_messages(MIXED_KEYS.encode(), mixed) == [
        (b"A1", rows[0].payload), (b"A2", rows[1].payload), (b"A1", rows[2].payload)]
    # A single message keeps the row's key, whatever the row says.
    assert keyed_messages(b"p1", rows[0].payload) == [(b"p1", rows[0].payload)]  # type: ignore[list-item]


def test_a_group_of_mixed_keys_whose_message_names_no_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="names no key"):
        keyed_messages(b"", b'[{"type":"x","key":"A1"},{"type":"x"}]')


def test_packed_puts_a_topics_consecutive_messages_size_to_a_row_whatever_their_keys() -> None:
    rows = [row(n, f"p{n % 3}") for n in range(7)]
    other = row(99, "p0", topic="elsewhere")
    out = packed([*rows[:2], other, *rows[2:]], size=3)
    # each topic's messages in order; the other topic's row where it was
    assert [(r.topic, r.key, ns(r)) for r in out] == [
        ("t", MIXED_KEYS, [0, 1, 2]), ("elsewhere", "p0", [99]), ("t", MIXED_KEYS, [3, 4, 5]),
        ("t", "p0", [6])]
    assert out[0].event_id == rows[0].event_id and out[-1] is rows[6]
    published = [k for r in out for k, _ in keyed_messages(r.key.encode(), r.payload)]  # type: ignore[arg-type]
    assert published == [b"p0", b"p1", b"p2", b"p0", b"p0", b"p1", b"p2", b"p0"]
    same = packed([row(1, "k"), row(2, "k")._replace(event_type="test.other")])
    assert [(r.key, ns(r)) for r in same] == [("k", [1, 2])]  # one key: the row's
    assert packed(rows[:1]) == rows[:1] and packed([]) == []
