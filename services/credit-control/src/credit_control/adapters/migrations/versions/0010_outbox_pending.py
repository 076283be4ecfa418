"""credit: the outbox marks rows published without rewriting them (outbox version 2): a narrow
`outbox_pending` queue filled by a statement trigger, `published_at` dropped
(common.migrations.outbox_v2; docs/reliability.md "Outbox").

Revision ID: 0010
"""

from common.migrations import outbox_v2

revision = "0010"
down_revision = "0009_reviews"


def upgrade() -> None:
    outbox_v2("credit")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
