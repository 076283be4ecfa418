"""Issue 16's "behaviour unchanged": the same events into the previous round's credit-control
(the revision `balance_path_compare.BASE`) and into this tree give the same rows in
product_credit, decisions, state_history, account_positions and work_orders, and the same
outbox events in the same order (ids and wall-clock moments aside)."""

import asyncio

import pytest

from common.testing.stack import Stack

from . import balance_path_compare as compare

pytestmark = [pytest.mark.integration]


async def test_the_same_events_give_the_same_rows_and_events(stack: Stack) -> None:
    if not compare.has_revision(compare.BASE):
        pytest.skip(f"revision {compare.BASE} is not in this clone (a shallow clone?)")
    counts, diffs = await asyncio.to_thread(compare.compare, compare.BASE, 16, 40, 8)
    assert diffs == []
    # The stream must exercise what it claims to: every kind of move, the chain and work orders.
    for kind in ("bill_notice", "arrears_cleared", "suspend", "restore", "payment_reversed"):
        assert counts[f"decision {kind}"] > 0, kind
    assert counts["work_orders"] > 0 and counts["outbox"] > counts["decisions"]
