"""credit: a decision's inputs are stored as `json` (the text its writer made), not `jsonb`.

The month-end sweep built each decision's inputs with `jsonb_build_object` (every value
typed and copied into a jsonb, its keys sorted); it now writes them as text, as it writes
the notice context (migration 0029), and the server only checks the text: 5.5 % fewer
server instructions per decision (docs/benchmarks.md, eleventh session). The balance path
sends the text orjson encoded, no longer parsed into jsonb. Readers take the column as JSON
either way (`->`, `->>` read json as they read jsonb); nothing compares it with `=`.

ALTER ... TYPE rewrites the table under an exclusive lock: on a production database of
millions of decisions it wants a maintenance window, as 0029 did.

Revision ID: 0030
"""

from alembic import op

revision = "0030"
down_revision = "0029"


def upgrade() -> None:
    op.execute("ALTER TABLE credit.decisions ALTER COLUMN inputs TYPE json USING inputs::json")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
