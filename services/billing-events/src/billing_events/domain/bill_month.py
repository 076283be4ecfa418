"""One rule between a bill month's charges and its bill run (docs/billing.md, "A month's
charges and its bill run"). Pure: the HTTP charge, the CSV import and the bill run all ask it.

Every charge has a moment: the `as_of` it claims, else the moment billing recorded it (a
charge posted without `as_of`, every row of a CSV chunk: the moment its balance event
carries). A bill run closes its month at its own moment. The month's charges come first:

- a charge into a month its bill run has closed is refused, whatever its moment (a closed
  month is corrected with an adjustment);
- a bill run dated before a charge of its month is refused: it would close the month before
  the charge came in, the charge's balance event saying "unbilled" after the run's said
  "billed".

Before, a charge without `as_of` and a CSV row kept no moment (`charges.charged_at` NULL), so
a bill run could be dated before them; such rows written then still have none and are not
checked. A base loaded today is billed for its past months by a bill run dated at or after
the load (the default, now), or its charges are posted with the `as_of` they really had.
"""

from datetime import datetime
from typing import NamedTuple


class ChargeMoment(NamedTuple):
    """The charge of a bill month recorded last (its id and moment)."""

    charge_id: str
    at: datetime


class BillRunTooEarly(NamedTuple):
    """Why a bill run may not close its month at `at`: a charge of the month came later."""

    message: str
    charge: ChargeMoment


def charge_moment(as_of: datetime | None, recorded_at: datetime) -> datetime:
    """The moment a charge claims, else the moment it was recorded."""
    return as_of if as_of is not None else recorded_at


def closed_month_refusal(bill_month: str, closed: bool) -> str | None:
    """Why a charge may not enter `bill_month` (None: it may)."""
    if not closed:
        return None
    return (f"bill month {bill_month} is closed by its bill run; correct a closed month with "
            "an adjustment")


def bill_run_refusal(bill_month: str, at: datetime,
                     last_charge: ChargeMoment | None) -> BillRunTooEarly | None:
    """Why a bill run may not close `bill_month` at `at` (None: it may). `last_charge`: the
    month's charge with the latest moment, if any has one."""
    if last_charge is None or at >= last_charge.at:
        return None
    return BillRunTooEarly(
        f"as_of {at.isoformat()} is before charge {last_charge.charge_id!r} of bill month "
        f"{bill_month} was recorded ({last_charge.at.isoformat()}); a bill run closes its "
        "month after the month's charges, never before", last_charge)
