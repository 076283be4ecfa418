import os
import time
import uuid

from common import ids


def test_new_uuid_is_a_random_version_4_uuid_across_refills() -> None:
    made = [ids.new_uuid() for _ in range(3 * 4096 + 7)]  # more than one read of random bytes
    assert len({str(u) for u in made}) == len(made)
    for u in made:
        assert isinstance(u, uuid.UUID)
        parsed = uuid.UUID(str(u))
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert parsed == u


def test_new_hex_is_random_hex_of_the_asked_length() -> None:
    made = [ids.new_hex(16) for _ in range(5000)]
    assert len(set(made)) == len(made)
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in made)
    assert len(ids.new_hex()) == 32


def test_a_forked_child_does_not_reuse_the_parents_unread_bytes() -> None:
    ids.new_uuid()  # the pool now holds unread ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, to the parent
        os.close(read)
        os.write(write, str(ids.new_uuid()).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child != str(ids.new_uuid())


def test_event_ids_are_version_7_and_ordered_by_the_time_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    made = [ids.new_event_id() for _ in range(3 * 4096 + 7)]  # more than one refill
    after = time.time_ns() // 1_000_000
    assert len({str(u) for u in made}) == len(made)
    for u in made:
        parsed = uuid.UUID(str(u))
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert before <= parsed.int >> 80 <= after  # the first 48 bits: Unix milliseconds
    # Made one after the other, each sorts after the one before (or ties within ~244 ns,
    # the 12 bits of the millisecond's fraction): what keeps B-tree inserts at the right edge.
    prefixes = [u.int >> 64 for u in made]
    assert prefixes == sorted(prefixes)
    # Not a counter: the last 62 bits are random.
    assert len({u.int & ((1 << 62) - 1) for u in made}) == len(made)



def test_an_event_id_head_and_the_events_numbers_make_version_7_ids_in_their_order() -> None:
    before = time.time_ns() // 1_000_000
    heads = [ids.event_id_head() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    # What the sweep's SQL does: head || lpad(to_hex(number), 7, '0')
    made = [uuid.UUID(f"{h}{n:0{ids.EVENT_NUMBER_DIGITS}x}") for h in heads[:3]
            for n in (1, 2, 15, 16, 300_000, 16**ids.EVENT_NUMBER_DIGITS - 1)]
    for u in made:
        assert (u.version, u.variant) == (7, uuid.RFC_4122)
        assert before <= u.int >> 80 <= after
    # One statement's ids sort as their numbers; two statements' heads differ (46 random bits)
    assert made[:6] == sorted(made[:6])
    assert len({h[14:] for h in heads}) == len(heads)
    assert ids.new_event_id().int >> 80 >= made[0].int >> 80
