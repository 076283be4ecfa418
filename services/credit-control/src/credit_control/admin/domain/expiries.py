"""Exemptions that run out (an emergency no-suspension's `until`, a red list's expiry): when
does the customer stop being exempt, and who is told. Pure.

Adding or removing an exemption is a staff action and publishes `credit.exemption_changed`
in its transaction (service_layer/admin.py). An exemption that runs out at `until` is no
action: nothing happens at that moment, so a periodic job (service_layer/expiries.py) finds
the exemptions run out and not yet announced, and this decides what to announce. Why
announce at all: the notifier keeps, per product, whether it is exempt; without a word it
would keep the product exempt until the product's next credit event, and cancel a
suspension warning that credit-control will carry out (docs/notifier.md "No empty threats").
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

# Who the audit names for an expiry: no one acted, the job noticed.
EXPIRY_ACTOR = "exemption-expiry"


@dataclass(frozen=True)
class RunOut:
    """An exemption whose `until` has passed, not removed, not announced yet."""

    exemption_id: str
    customer_id: str
    kind: str
    until: datetime


@dataclass(frozen=True)
class Announcement:
    """The customer is no longer exempt: each of its products is told so, as of `as_of`."""

    customer_id: str
    exemption_id: str  # the exemption whose end ended the customer's exemption
    as_of: datetime  # its `until`


def announcements(run_out: Iterable[RunOut], still_exempt: set[str]) -> list[Announcement]:
    """One announcement per customer whose exemptions ran out, unless another exemption
    still holds for it (`still_exempt`: the customers exempt at the job's moment): then it
    is still exempt, nothing changed for its products, and the exemption that holds is
    announced when it ends (removed, or run out in its turn). Several run out for one
    customer (a catch-up after a pause): the customer stopped being exempt when the last of
    them ran out, so one announcement, as of that `until` (then the exemption id, for a
    stable choice). Customers in id order."""
    last: dict[str, RunOut] = {}
    for r in run_out:
        known = last.get(r.customer_id)
        if known is None or (r.until, r.exemption_id) > (known.until, known.exemption_id):
            last[r.customer_id] = r
    return [Announcement(c, r.exemption_id, r.until) for c, r in sorted(last.items())
            if c not in still_exempt]


__all__ = ["EXPIRY_ACTOR", "Announcement", "RunOut", "announcements"]
