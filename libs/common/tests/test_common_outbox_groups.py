"""Several messages in one outbox row (`grouped`) and read back (`messages`, with their keys
`keyed_messages`): each key's messages keep their order and their bytes; a row of one
message stays as it was; a group of mixed keys (the month-end sweep's) publishes each
message with its envelope's key."""

from datetime import UTC, datetime
from typing import ClassVar

import msgspec
import pytest

from common.envelope import Contract, wrap
from common.outbox import MIXED_KEYS, OutboxRow, envelope_row, grouped, keyed_messages, messages


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


def test_a_keys_rows_become_one_row_where_its_first_was_their_messages_in_order() -> None:
    rows = [row(1, "p1"), row(2, "p2"), row(3, "p1"), row(4, "p1"), row(5, "p3")]
    out = grouped(rows)
    assert [(r.key, ns(r)) for r in out] == [("p1", [1, 3, 4]), ("p2", [2]), ("p3", [5])]
    assert out[0].event_id == rows[0].event_id  # the group's first message's
    assert out[1] is rows[1] and out[2] is rows[4]  # alone: the row as it was
    # Each message is its envelope's bytes exactly as written, Chinese and escapes included.
    chinese = [row(6, "p9", note='停机 "A" \\ 通知'), row(7, "p9", note="开机")]
    [together] = grouped(chinese)
    assert messages(together.payload) == [r.payload for r in chinese]  # type: ignore[arg-type]


def test_rows_of_other_topics_or_event_types_are_never_put_together() -> None:
    a, b = row(1, "p1", topic="t1"), row(2, "p1", topic="t2")
    c = row(3, "p1", topic="t1")._replace(event_type="test.other")
    assert grouped([a, b, c]) == [a, b, c]


def test_a_keys_row_of_another_type_in_between_starts_its_next_row() -> None:
    x1, y, x2 = row(1, "k"), row(2, "k")._replace(event_type="test.other"), row(3, "k")
    assert grouped([x1, y, x2]) == [x1, y, x2]  # X2 after Y, as written
    x3 = row(4, "k")
    out = grouped([x1, y, x2, row(9, "p"), x3])
    assert [(r.event_type, ns(r)) for r in out if r.key == "k"] == [
        ("test.staged", [1]), ("test.other", [2]), ("test.staged", [3, 4])]


def test_without_two_rows_alike_the_rows_are_returned_as_they_are() -> None:
    rows = [row(i, f"p{i}") for i in range(4)]
    assert grouped(rows) == rows
    assert grouped([]) == []


def test_a_rows_payload_that_is_one_envelope_is_one_message() -> None:
    r = row(1, "p1")
    assert messages(r.payload) == [r.payload]  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [b'[{"a":1},', b"[]", b"[1,2]", b'[{"a":1},"b"]'])
def test_a_malformed_group_is_an_error_not_a_guess(payload: bytes) -> None:
    with pytest.raises(ValueError):
        messages(payload)


def test_a_groups_messages_go_with_the_rows_key_or_of_mixed_keys_each_with_its_own() -> None:
    one = grouped([row(1, "p1"), row(2, "p1")])[0]
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
