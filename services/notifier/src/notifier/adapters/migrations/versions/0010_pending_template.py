"""notifier: a message claimed for sending (`sending`) when its product becomes exempt from
suspension keeps, beside the revision it is owed (0009), the template it is to be rendered as
(`pending_template`, `pending_template_version`: warning_3 → warning_3_exempt), applied if
its submit fails and it waits for a retry (or its claim is retaken after its sender died),
cleared if it was accepted (domain/revision.py exempt_revisions, docs/notifier.md "No empty
threats"). NULL: its own template; only a `sending` row ever has one.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
S = "notifier"


def upgrade() -> None:
    op.add_column("messages", sa.Column("pending_template", sa.Text), schema=S)
    op.add_column("messages", sa.Column("pending_template_version", sa.Integer), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
