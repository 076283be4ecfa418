"""asyncpg's array parameters without a Python-level call per element.

To tell a nested array from a scalar, asyncpg asks of every element of an array parameter
`isinstance(x, collections.abc.Iterable)` (and `Sized`): each is a call of the Python-level
`ABCMeta.__instancecheck__`. The hot paths pass whole columns as arrays (`unnest`), so that
was ~10 % of credit-control's instructions per balance event (`make bench-instructions`:
186,667 → 168,084) and a third of the bench's minimal consumer's.

Every array this project passes is a list or a tuple (of scalars, or of nested lists), so
`narrow_array_checks` makes asyncpg ask for those two concrete types instead: the same answer
for them, in C. What changes: a set, a dict view or a range given as an array is refused
("a sized iterable container expected") instead of encoded; pass a list.

The names are asyncpg's module globals (`asyncpg/protocol/codecs/array.pyx`), so this is done
only for the asyncpg versions it was checked against, and a test fails when an upgrade moves
them; any other version keeps asyncpg's own checks.
"""

import logging

import asyncpg
import asyncpg.protocol.protocol as _protocol

log = logging.getLogger(__name__)

ARRAY_CONTAINERS = (list, tuple)
CHECKED_VERSIONS = ("0.32.",)
_NAMES = ("IterableABC", "SizedABC")


def narrow_array_checks() -> bool:
    """Apply once per process (common.db does, on import); whether it is in effect."""
    if not asyncpg.__version__.startswith(CHECKED_VERSIONS) or not all(
            hasattr(_protocol, name) for name in _NAMES):
        log.warning("asyncpg %s: its array element checks are left as they are (checked "
                    "against %s)", asyncpg.__version__, ", ".join(CHECKED_VERSIONS))
        return False
    for name in _NAMES:
        setattr(_protocol, name, ARRAY_CONTAINERS)
    return True
