"""billing: outbox version 3, the view `outbox_messages` (a row's messages, one view row each, a
group's from its JSON array) and lz4 for the payloads PostgreSQL compresses
(common.migrations.outbox_v3; docs/architecture.md, the outbox).

Revision ID: 0008
"""

from common.migrations import outbox_v3

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    outbox_v3("billing")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
