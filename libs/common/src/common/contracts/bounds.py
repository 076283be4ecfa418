"""The bounds every consumed contract field must keep, so a message outside them is refused at
the edge (the consumer's one-pass decode → `UnprocessableMessage` → dead-letter topic with the
reason) instead of failing deep in a handler or in PostgreSQL, where it could stall the
partition.

Why each bound:
- ids: billing's HTTP API admits ids of at most 64 characters (`Id` in its commands), and
  every id column is a btree-indexed TEXT: a 4 KB id fails "index row size exceeds btree
  maximum". Ids that services derive from others ("cmd-<product>-<seq>", uuids, rule ids)
  get a little more room.
- text: PostgreSQL refuses NUL in TEXT and in JSONB (22021, 22P05); free text is bounded too.
- months: `YYYY-MM`, month 01–12, a year in 1900–2999 (`date()` and the business calendar
  fail on month 13, and no bill is older or newer than that).
- money: integer fen within ±10^15 (10 trillion yuan, far above any account, far inside
  BIGINT, so sums of a few stay inside it too).
- sequences and attempts: BIGINT and INTEGER columns; a sequence grows by one per event, so
  10^15 is unreachable, and an attempt counter is a handful.
- instants: with their UTC offset. A naive time is ambiguous (UTC? Asia/Shanghai?), and
  `astimezone` would read it in the host's zone, moving a business date by hours.

Each bound is written once and read by both libraries: `msgspec.Meta` for the event contracts
(msgspec Structs, checked while decoding) and the pydantic constraint for the HTTP bodies
that carry the same fields (`contracts.reconciliation`). Each library ignores the other's
marker, so one `Annotated` type serves both.
"""

from datetime import datetime
from typing import Annotated

import msgspec
from pydantic import AwareDatetime, Field, StringConstraints

ID_MAX = 64  # billing's client-supplied ids (customer, account, product, CPNO)
REF_MAX = 128  # ids derived from them: decision, command, order, rule ids
NAME_MAX = 200  # names, phones, vendors, channels
TEXT_MAX = 4000  # reasons and details written by a service
FEN_LIMIT = 10**15  # |amount| in fen
SEQUENCE_MAX = 10**15
ATTEMPT_MAX = 1_000_000
SMALL_MAX = 2**31 - 1  # INTEGER columns: levels, versions, star levels

# No NUL anywhere in a string: PostgreSQL cannot store it in TEXT or JSONB.
NO_NUL = r"^[^\x00]*$"
BILL_MONTH_PATTERN = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$"


# NUL: the event decoder (common.envelope) refuses a NUL in any string of a message in one
# look at its bytes, instead of a regular expression per string (that was two thirds of the
# decode). So the msgspec side only publishes the pattern in the JSON Schema.
_NUL_SCHEMA = {"pattern": NO_NUL}

# Each line: the msgspec bound, then the same bound for pydantic.
Id = Annotated[str, msgspec.Meta(max_length=ID_MAX, extra_json_schema=_NUL_SCHEMA),
               StringConstraints(max_length=ID_MAX, pattern=NO_NUL)]
Ref = Annotated[str, msgspec.Meta(max_length=REF_MAX, extra_json_schema=_NUL_SCHEMA),
                StringConstraints(max_length=REF_MAX, pattern=NO_NUL)]
Name = Annotated[str, msgspec.Meta(max_length=NAME_MAX, extra_json_schema=_NUL_SCHEMA),
                 StringConstraints(max_length=NAME_MAX, pattern=NO_NUL)]
Text = Annotated[str, msgspec.Meta(max_length=TEXT_MAX, extra_json_schema=_NUL_SCHEMA),
                 StringConstraints(max_length=TEXT_MAX, pattern=NO_NUL)]
# Bill months: pydantic checks the pattern; on the msgspec side a regular expression per
# month was ~270 ns of a balance event's decode (a method call into `re` for each), so the
# struct holding one checks it in `__post_init__` (run after every decode, conversion and
# construction) against the set of every valid month, one hash look-up: ~40 ns. The JSON
# Schema still publishes the pattern; `check_bill_month` raises the ValueError msgspec
# reports as a ValidationError with the field's path.
BillMonth = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": BILL_MONTH_PATTERN}),
                      StringConstraints(pattern=BILL_MONTH_PATTERN)]
_BILL_MONTHS = frozenset(f"{y:04d}-{m:02d}" for y in range(1900, 3000) for m in range(1, 13))


def check_bill_month(name: str, month: str | None) -> None:
    """`month` is YYYY-MM of BILL_MONTH_PATTERN (or absent); a ValueError naming the field
    (`name`) otherwise: the dead letter's reason says which."""
    if month is not None and month not in _BILL_MONTHS:
        raise ValueError(f"{name} must be a bill month YYYY-MM (1900-01 to 2999-12), "
                         f"got {month!r}")
Fen = Annotated[int, msgspec.Meta(ge=-FEN_LIMIT, le=FEN_LIMIT), Field(ge=-FEN_LIMIT, le=FEN_LIMIT)]
SequenceNo = Annotated[int, msgspec.Meta(ge=0, le=SEQUENCE_MAX), Field(ge=0, le=SEQUENCE_MAX)]
Attempt = Annotated[int, msgspec.Meta(ge=0, le=ATTEMPT_MAX), Field(ge=0, le=ATTEMPT_MAX)]
SmallInt = Annotated[int, msgspec.Meta(ge=0, le=SMALL_MAX), Field(ge=0, le=SMALL_MAX)]
Instant = Annotated[datetime, msgspec.Meta(tz=True), AwareDatetime]
