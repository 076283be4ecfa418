import os
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
