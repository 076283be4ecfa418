"""credit: `product_credit.customer_id` indexed. A customer's products are looked up by it
wherever a customer is the subject rather than an account: a profile change reconsidering
its products (the rating, a credit-admin's limit or star), a credit review, a collections
case's associated products, the admin's "does this customer exist". Without the index each
was a scan of the whole table: ~80 ms at 1,000,000 products, against 0.2 ms with it
(docs/benchmarks.md, thirtieth session). Updates that keep the customer (all of the
balance path's and the sweep's) stay HOT.

Built in the migration's transaction (the migrator holds its advisory lock there, so not
CONCURRENTLY): ~0.5 s a million products, the table's writes waiting meanwhile.

Revision ID: 0036
"""

from alembic import op

revision = "0036"
down_revision = "0035"
S = "credit"


def upgrade() -> None:
    op.create_index("ix_credit_product_credit_customer_id", "product_credit", ["customer_id"],
                    schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
