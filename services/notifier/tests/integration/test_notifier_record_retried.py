"""The provider has answered a claimed batch; recording its answer meets a deadlock (another
transaction on the same rows: seen in a soak's first minute). The recording is tried again
at once: the messages are 'submitted', each submitted once, not left
'sending' until their claim times out a minute later."""

from typing import Any

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from notifier.adapters import repository as repo
from notifier.service_layer.sending import send_pending

from .notifier_fixtures import (
    context_for,
    local,
    log_of,
    make_ctx,
    receive,
    smsc_rows,
    suspended,
)

pytestmark = [pytest.mark.integration]


async def test_a_deadlock_while_recording_the_providers_answer_is_recorded_again(
    db: AsyncEngine, uid: str, test_year: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-30T10:00")))
    notice = context_for(uid, test_year)
    await receive(ctx, suspended(notice))
    real, broken = repo.record_submitted, []

    async def deadlocked_once(*args: Any, **kw: Any) -> int:
        if not broken:
            broken.append(True)
            raise DBAPIError("UPDATE notifier.messages …", None,
                             asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))
        return await real(*args, **kw)

    monkeypatch.setattr(repo, "record_submitted", deadlocked_once)
    sent = 0
    for _ in range(100):  # other tests' due messages may share the queue
        if (n := await send_pending(ctx)) == 0:
            break
        sent += n
    assert broken and sent >= 2
    log = await log_of(db, notice.product.product_id)
    assert {(m["role"], m["status"], m["attempts"]) for m in log} == {
        ("account_manager", "submitted", 1), ("group_contact", "submitted", 1)}
    at_smsc = await smsc_rows(db, [m["message_id"] for m in log])
    assert sorted(r["submits"] for r in at_smsc) == [1, 1]
