"""gateway: outbox version 3, the view `outbox_messages` (a row's messages, one view row each, a
group's from its JSON array) and lz4 for the payloads PostgreSQL compresses
(common.migrations.outbox_v3; docs/architecture.md, the outbox).

Revision ID: 0005
"""

from common.migrations import outbox_v3

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    outbox_v3("gateway")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
