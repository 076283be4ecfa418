"""Amounts still true when they leave: a notice made earlier and not sent yet is given the
product's new own amount (credit-control's `credit.product_amount_changed`), or cancelled
when the product owes nothing of its own any more. And no threat that will not be carried
out: a notice threatening suspension (warning_3) made before its product became exempt
(credit-control's `credit.exemption_changed`) is rendered again as its exempt variant
(warning_3_exempt), with the same fields (`exempt_revisions`). Pure.

A message keeps the fields it was rendered from (`NoticeFields`, stored as JSON with it), so
it can be rendered again with the text of the template version it was made with: the wording
never changes under it, only the amounts do.

Which messages: those whose XX is the product's amount due (`AmountSource.DUE` and an XX in
the template). A deduction notice says what was collected (a fact, never revised); a restore
notice quotes no amount. The template itself is kept: 停机通知 B and its variant with the
account's total (notices._manager_suspension) are chosen when the message is made, and the
message id is made from the template, so a revised B keeps its template and both its tokens
are rendered again (XX the product's new amount, ACCOUNTXX the account's new total where the
message carries one).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from common.contracts.credit_control import ProductAmountChanged

from .notices import EXEMPT_VARIANTS
from .templates import (
    SPECS,
    AmountSource,
    NoticeFields,
    TemplateName,
    compile_template,
    render,
    segments,
)

NOTHING_OWED_REASON = ("nothing owed since the decision: the product's own amount due is 0 "
                       "(a reminder of 0.00 yuan is never sent)")


def _quotes_amount_due(template: TemplateName) -> bool:
    spec = SPECS[template]
    return (spec.amount_source is AmountSource.DUE
            and "XX" in compile_template(spec.default_text)[1::2])


# The templates whose amount is revised; the SQL reads only their messages.
REVISED_TEMPLATES: frozenset[TemplateName] = frozenset(
    t for t in TemplateName if _quotes_amount_due(t))


def revise(fields: NoticeFields, change: ProductAmountChanged) -> NoticeFields | None:
    """The fields a waiting message is rendered with after `change`; None: it must not leave
    (the product owes nothing of its own: a 0.00 yuan reminder or threat is never sent)."""
    if change.amount_due_fen == 0:
        return None
    account = (change.account_amount_due_fen if fields.account_amount_fen is not None
               else None)
    return NoticeFields(
        product_name=fields.product_name, product_no=fields.product_no,
        amount_fen=change.amount_due_fen, date=fields.date,
        account_manager_name=fields.account_manager_name, group_name=fields.group_name,
        account_amount_fen=account)


@dataclass(frozen=True)
class Waiting:
    """A message not sent yet, made before the change, with what it was rendered from — or,
    claimed for sending with a revision pending, what that revision renders it from."""

    message_id: str
    fields: NoticeFields
    template_text: str  # the text of the template version it was made with
    # Claimed for sending with a cancellation pending (the last change said nothing owed):
    # its fields are no longer what it would leave with.
    cancelling: bool = False
    # Its template (or, claimed with a revision pending, the one that revision renders):
    # the exempt revision needs it, an amount revision keeps it whatever it is.
    template: TemplateName | None = None


@dataclass(frozen=True)
class Revised:
    """What becomes of a waiting message: rendered again, or (fields None) cancelled; with
    `template`, rendered as another template (its `template_version`), `note` saying why in
    the message's reason."""

    message_id: str
    fields: NoticeFields | None
    text: str | None = None
    segments: int | None = None
    template: TemplateName | None = None
    template_version: int | None = None
    note: str | None = None


def revisions(waiting: Iterable[Waiting], change: ProductAmountChanged) -> list[Revised]:
    """The messages the change revises or cancels; one whose amounts already are the new
    ones is left alone (a change heard again under a new event id revises nothing), and so
    is one already to be cancelled when the product still owes nothing. A cancellation
    pending is undone by a change that says the product owes again, even the amount the
    message was made with."""
    found = []
    for w in waiting:
        new = revise(w.fields, change)
        if new is None:
            if not w.cancelling:
                found.append(Revised(w.message_id, None))
        elif new != w.fields or w.cancelling:
            text = render(w.template_text, new)
            found.append(Revised(w.message_id, new, text, segments(text)))
    return found


def exempt_note(variant: TemplateName) -> str:
    """What a message rendered again as its exempt variant says about it (its reason)."""
    return (f"exempt from suspension since the decision (red list or emergency "
            f"no-suspension): rendered again as {variant.value}, without the threat of a "
            "suspension that will not follow")


def exempt_revisions(waiting: Iterable[Waiting],
                     current: Mapping[TemplateName, tuple[int, str]]) -> list[Revised]:
    """The waiting messages of a product that has become exempt from suspension whose
    template threatens it (`EXEMPT_VARIANTS`): the same fields (product, amount, date) in
    the exempt variant's current text (`current`: template → (version, text)), as a
    message made now for the exempt product would be. It is still a true reminder of what
    is owed; only the threat goes. One to be cancelled (nothing owed) is left to that."""
    found = []
    for w in waiting:
        variant = EXEMPT_VARIANTS.get(w.template) if w.template is not None else None
        if variant is None or w.cancelling:
            continue
        version, text = current[variant]
        rendered = render(text, w.fields)
        found.append(Revised(w.message_id, w.fields, rendered, segments(rendered),
                             variant, version, exempt_note(variant)))
    return found


# --- the stored fields (messages.fields, JSON) --------------------------------------------

_ENCODER = msgspec.json.Encoder()


def fields_json(fields: NoticeFields) -> str:
    """As stored with the message (msgspec: a dataclass and its date in one C pass)."""
    return _ENCODER.encode(fields).decode()


def fields_from(stored: dict[str, Any] | str | bytes) -> NoticeFields:
    """The stored JSON (decoded by the driver, or its text) back to the fields."""
    if isinstance(stored, str | bytes):
        return msgspec.json.decode(stored, type=NoticeFields)
    return msgspec.convert(stored, NoticeFields)


__all__ = ["NOTHING_OWED_REASON", "REVISED_TEMPLATES", "Revised", "Waiting", "exempt_note",
           "exempt_revisions", "fields_from", "fields_json", "revise", "revisions"]
