"""billing: the outbox marks rows published without rewriting them (outbox version 2): a narrow
`outbox_pending` queue filled by a statement trigger, `published_at` dropped
(common.migrations.outbox_v2; docs/reliability.md "Outbox").

Revision ID: 0004
"""

from common.migrations import outbox_v2

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    outbox_v2("billing")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
