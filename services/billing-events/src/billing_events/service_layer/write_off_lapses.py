"""Write-offs lapse when what they wrote off is paid or cancelled after all (docs/billing.md,
"Write-offs lapse"). A write-off (核销) is the operator giving up on a debt, never money the
customer has. A payment or a credit note that would leave the account in credit while
write-offs stand makes the excess lapse (bad debt recovered), and a credit note on a closed
month makes lapse what it cancels beyond what that month still owed (debt a write-off
covered), each written as its own ledger row before the balance event: without it, the
write-off paid the next bills (free service, a debtor out of credit control). A payment that
bounces brings back what its arrival made lapse.

The use cases call these in their transaction, with the account locked, before publishing:
after writing a payment or a reversal, before writing a credit note (whose effect on the
position is known beforehand)."""

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..adapters import repository as repo
from ..adapters import tables as t
from ..domain.model import write_off_lapse
from .balances import closed_months, current_states


async def after_payment(conn: AsyncConnection, account_id: str, payment_id: str,
                        at: datetime) -> int:
    """After a payment was written: the lapse written (0: none)."""
    standing = await repo.standing_write_offs(conn, [account_id])
    if account_id not in standing:
        return 0  # no write-off stands: nothing can lapse (almost every account)
    fen, written_at = standing[account_id]
    balance = (await current_states(conn, [account_id]))[account_id].position.balance_fen
    lapse = write_off_lapse(balance, fen)
    if lapse:
        await _write(conn, account_id, lapse, "payment", payment_id, max(at, written_at),
                     payment_id)
    return lapse


async def before_credit_note(conn: AsyncConnection, account_id: str, adjustment_id: str,
                             month: date, fen: int, at: datetime) -> int:
    """Before a credit note (`fen` < 0) on `month` is written: the lapse written (0: none).
    On a closed month it moves the balance by −`fen` and cancels what the month still owes
    first, then debt the credits covered (`uncovered_fen`); on an open month, nothing of
    either."""
    standing = await repo.standing_write_offs(conn, [account_id])
    if account_id not in standing or month not in await closed_months(conn):
        return 0
    written, written_at = standing[account_id]
    position = (await current_states(conn, [account_id]))[account_id].position
    owed = sum(d.amount_due_fen for d in position.dues if d.bill_month == month)
    lapse = write_off_lapse(position.balance_fen - fen, written,
                            uncovered_fen=max(0, -fen - owed))
    if lapse:
        await _write(conn, account_id, lapse, "adjustment", adjustment_id,
                     max(at, written_at), None)
    return lapse


async def after_reversal(conn: AsyncConnection, account_id: str, reversal_id: str,
                         payment_id: str, at: datetime) -> int:
    """After a payment bounced: what its arrival made lapse comes back, less what the
    account's credit still makes lapse; the net change written (< 0: write-offs back)."""
    revived = await repo.lapsed_by_payment(conn, payment_id)
    standing = await repo.standing_write_offs(conn, [account_id])
    if not revived and account_id not in standing:
        return 0
    fen = standing.get(account_id, (0, at))[0]
    balance = (await current_states(conn, [account_id]))[account_id].position.balance_fen
    change = write_off_lapse(balance, fen, revived)
    if change:
        await _write(conn, account_id, change, "reversal", reversal_id, at, None)
    return change


async def after_payments(conn: AsyncConnection, payments: Iterable[tuple[str, str, int, datetime]]
                         ) -> None:
    """A CSV chunk's payments (payment_id, account_id, amount_fen, paid_at), in file order:
    each account's lapse, shared out over its payments from the last one back (each at
    most its amount), so a bounced one brings back its own share."""
    by_account: dict[str, list[tuple[str, int, datetime]]] = {}
    for payment_id, account_id, fen, paid_at in payments:
        by_account.setdefault(account_id, []).append((payment_id, fen, paid_at))
    standing = await repo.standing_write_offs(conn, sorted(by_account))
    if not standing:
        return
    states = await current_states(conn, sorted(standing))
    for account_id, (fen, written_at) in standing.items():
        left = write_off_lapse(states[account_id].position.balance_fen, fen)
        for payment_id, paid, paid_at in reversed(by_account[account_id]):
            share = min(left, paid)
            if share <= 0:
                break
            await _write(conn, account_id, share, "payment", payment_id,
                         max(paid_at, written_at), payment_id)
            left -= share


async def _write(conn: AsyncConnection, account_id: str, fen: int, cause: str, cause_id: str,
                 at: datetime, payment_id: str | None) -> None:
    await conn.execute(insert(t.write_off_lapses).values(
        lapse_id=f"{cause}:{cause_id}", account_id=account_id, amount_fen=fen, cause=cause,
        payment_id=payment_id, lapsed_at=at))
