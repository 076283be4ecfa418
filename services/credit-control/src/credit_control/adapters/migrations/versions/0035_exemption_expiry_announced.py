"""credit: an exemption that runs out at its `until` (an emergency no-suspension, a red list
with an expiry) is announced once to the notifier (`credit.exemption_changed`, not exempt
any more, as of `until`) by a periodic job, which marks it here in the transaction that
writes the announcement's outbox rows (admin/service_layer/expiries.py). NULL: not announced
yet (or never to be: no `until`, removed before it ran out). The partial index is the job's
scan: what has run out and is still unannounced, a handful of rows at any time.

An exemption that ran out before this revision is announced by the job's first run (its
customer's products may still be held exempt by the notifier: the gap this closes).

Revision ID: 0035
"""

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
S = "credit"


def upgrade() -> None:
    op.add_column("exemptions",
                  sa.Column("expiry_announced_at", sa.DateTime(timezone=True)), schema=S)
    op.create_index("ix_exemptions_expiry_due", "exemptions", ["until"], schema=S,
                    postgresql_where=sa.text("until IS NOT NULL AND removed_at IS NULL "
                                             "AND expiry_announced_at IS NULL"))


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
