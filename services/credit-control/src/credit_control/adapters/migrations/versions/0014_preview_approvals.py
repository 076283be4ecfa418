"""credit: sweeps that need an approved preview (issue 19). The guard's settings gain the
switch; approvals keep the decision ids a credit-admin saw; a sweep hold says what kind of
hold it is (the mass-suspension guard's, or a missing or outdated approval) and, for the
latter, the difference from the approved preview.

Revision ID: 0014
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
S = "credit"


def upgrade() -> None:
    op.add_column("guard_settings", sa.Column(
        "needs_approved_preview", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S)
    op.create_table(
        "preview_approvals",
        sa.Column("approval_id", sa.Text, primary_key=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("decision_ids", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("approved_by", sa.Text, nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        schema=S)
    op.create_index("ix_preview_approvals_as_of", "preview_approvals",
                    ["as_of", "approved_at"], schema=S)
    op.add_column("sweep_holds", sa.Column("kind", sa.Text, nullable=False,
                                           server_default="guard"), schema=S)
    op.add_column("sweep_holds", sa.Column("difference", postgresql.JSONB), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
