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
from typing import Any

import asyncpg
import asyncpg.protocol.protocol as _protocol
import msgspec

from common.envelope import BACKSLASH

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


# --- arrays sent as their text form -------------------------------------------------------
# Even with the checks in C, asyncpg encodes an array element by element through its codec
# (~1,900 instructions an element in credit-control's batches, 12 % of a balance event's).
# The statements of the hot paths (common.db.DriverStatement) send their arrays of scalars
# as PostgreSQL's text form of the array instead, made by msgspec in C: `["a",1,null]` is
# `{"a",1,null}` once the brackets are braces, as long as no element needed a backslash
# (msgspec escapes only `"`, `\` and control characters, and PostgreSQL's array syntax reads
# a backslash differently); such a list is written element by element below. The server
# parses the text with the element type's input function, as it would a literal.

TEXT_FORM_TYPES = frozenset({"text", "bigint", "integer", "int", "boolean", "date",
                             "timestamptz", "uuid"})
_encode = msgspec.json.Encoder().encode


def array_text(values: list[Any] | tuple[Any, ...], element: str) -> str:
    """`values` (one dimension, scalars of `element`, a type of TEXT_FORM_TYPES) as
    PostgreSQL's text form of an array. A naive datetime is refused for timestamptz: the
    server would read it in its own time zone (asyncpg read it in this process's)."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"an array parameter is a list or a tuple, not {type(values).__name__}")
    if element == "timestamptz":
        _require_aware(values)
    raw = _encode(values)
    if BACKSLASH in raw:  # the byte's value (envelope.py says why)
        return "{" + ",".join(map(_element, values)) + "}"
    return "{" + raw[1:-1].decode() + "}"


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _encode(value).decode()  # numbers, booleans; dates and uuids come quoted


def _require_aware(values: list[Any] | tuple[Any, ...]) -> None:
    for v in values:
        if v is not None and getattr(v, "tzinfo", None) is None:
            raise TypeError(f"a timestamptz array takes aware datetimes, not {v!r}")
