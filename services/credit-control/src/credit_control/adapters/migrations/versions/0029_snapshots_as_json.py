"""credit: the snapshots and a decision's notice context are stored as `json` (their text as
msgspec wrote it), not `jsonb`.

The balance path sends every product's snapshot (and an account's customer snapshot when it
changed) as the JSON text msgspec encodes; PostgreSQL parsed it into jsonb, and the month-end
sweep rebuilt a decision's context with `jsonb_build_object` from the stored snapshots and
then read it back field by field to print the events' payloads as msgspec prints them. As
`json` the server only checks the text, keeps it byte for byte, and the sweep splices the
stored texts into the context and the payloads (adapters/sweep_sql.py). `->`, `->>` and
`#>` read json as they read jsonb (parsing the text each time); json has no `=` (a caller
that compares casts to jsonb). A decision's inputs stay jsonb: built as json text they cost
the sweep more (5.6 % more instructions a decision: json_build_object types every value
anew, and the column checks the text again).

The snapshots already stored are rewritten as msgspec writes their structs (fields in the
struct's order, compact: `event_text.jsonb_struct_text`), so every later payload is the
contract's own text. Decisions keep jsonb's printing of what they hold (a decision is
history: its events were published when it was made).

Revision ID: 0029
"""

from alembic import op

from common.contracts.snapshots import CustomerSnapshot, ProductSnapshot
from credit_control.credit.adapters.event_text import jsonb_struct_text

revision = "0029"
down_revision = "0028"
S = "credit"


def upgrade() -> None:
    op.execute(f"ALTER TABLE {S}.decisions ALTER COLUMN context TYPE json USING context::json")
    for table, key, column, struct in (
            ("product_credit", "product_id", "product", ProductSnapshot),
            ("account_positions", "account_id", "customer", CustomerSnapshot)):
        op.execute(f"ALTER TABLE {S}.{table} ALTER COLUMN {column} TYPE json "
                   f"USING {column}::json")
        # The canonical text from each row's value parsed once (a subquery per row would be
        # allowed here, not in ALTER's USING).
        op.execute(f"UPDATE {S}.{table} t SET {column} = ({jsonb_struct_text('s.j', struct)})"
                   f"::json FROM (SELECT {key}, {column}::jsonb AS j FROM {S}.{table}) s "
                   f"WHERE t.{key} = s.{key} AND jsonb_typeof(s.j) = 'object'")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
