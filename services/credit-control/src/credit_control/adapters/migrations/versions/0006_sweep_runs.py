"""credit: sweeps that finish. A sweep's progress is durable per step and chunk: one row per
run (running / held / done, catch-up or not) and one per step with the last product id done,
so a restart, a re-post or a re-confirm completes exactly what is left.

Sweeps answered before this revision are recorded as done (or held, while their hold waits),
so the scheduler's catch-up does not run their days again.

Revision ID: 0006_sweep_runs
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_sweep_runs"
down_revision = "0005_worklists"
S = "credit"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sweep_runs",
        sa.Column("sweep_id", sa.Text, primary_key=True),
        _ts("as_of"),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("rule_version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("catch_up", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("confirmed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("held", JSONB),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("finished_at", nullable=True),
        schema=S,
    )
    op.create_index("ix_sweep_runs_status", "sweep_runs", ["status", "created_at"], schema=S)
    op.create_table(
        "sweep_steps",
        sa.Column("sweep_id", sa.Text, primary_key=True),
        sa.Column("step_no", sa.Integer, primary_key=True),
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("after", sa.Text, nullable=False, server_default=""),
        sa.Column("decided", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("chunks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done", sa.Boolean, nullable=False, server_default="false"),
        _ts("updated_at"),
        schema=S,
    )
    op.execute(f"""
        INSERT INTO {S}.sweep_runs (sweep_id, as_of, business_date, rule_version, status,
            confirmed, held, created_at, updated_at, finished_at)
        SELECT k.key, (k.response->>'as_of')::timestamptz,
               (k.response->>'business_date')::date, (k.response->>'rule_version')::int,
               CASE WHEN h.status = 'held' THEN 'held' ELSE 'done' END,
               COALESCE(h.status = 'confirmed', false),
               CASE WHEN k.response->'held' = 'null'::jsonb THEN NULL
                    ELSE k.response->'held' END,
               k.created_at, k.created_at,
               CASE WHEN h.status = 'held' THEN NULL ELSE k.created_at END
        FROM {S}.idempotency_keys k LEFT JOIN {S}.sweep_holds h ON h.sweep_id = k.key
        WHERE k.scope = 'sweep' AND k.status_code = 201
          AND k.response ? 'as_of' AND k.response ? 'business_date'
        ON CONFLICT DO NOTHING""")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
