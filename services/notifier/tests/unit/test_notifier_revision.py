"""notifier.domain.revision: a notice not sent yet is given the product's new own amount
(credit.product_amount_changed) in the wording of the template version it was made with, or
cancelled when the product owes nothing of its own; a deduction notice is never revised.
A waiting warning_3 of a product that became exempt is rendered again as warning_3_exempt.
And the consumer hands the amount change to the service layer like the credit events."""

from datetime import UTC, date, datetime

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.contracts.credit_control import CreditState, DecisionType, ProductAmountChanged
from common.envelope import RawEnvelope, to_bytes, wrap
from notifier.domain.notices import notices_for
from notifier.domain.revision import (
    REVISED_TEMPLATES,
    Revised,
    Waiting,
    exempt_note,
    exempt_revisions,
    fields_from,
    fields_json,
    revise,
    revisions,
)
from notifier.domain.templates import DEFAULT_TEMPLATES, NoticeFields, TemplateName, render
from notifier.entrypoints.consumer import CONTRACTS, _credit_event

from .test_notifier_notices import CTX, changed, collected, decision

T, S = TemplateName, CreditState
AT = datetime(2026, 11, 30, 15, 10, tzinfo=UTC)
FIELDS = NoticeFields(product_name="企信通", product_no="CP20261101", amount_fen=12_345,
                      date=date(2026, 11, 25), account_manager_name="张伟",
                      group_name="某某科技有限公司")


def change(amount_fen: int, account_fen: int | None = None) -> ProductAmountChanged:
    return ProductAmountChanged(
        account_id="A-001", product_id="P-001", as_of=AT, sequence=7, state=S.WARNED,
        amount_due_fen=amount_fen, previous_fen=12_345,
        account_amount_due_fen=amount_fen if account_fen is None else account_fen)


def test_the_amounts_due_are_revised_not_a_deduction_nor_a_restore() -> None:
    # A deduction notice says what was collected (a fact); a restore notice quotes no amount.
    assert set(TemplateName) - REVISED_TEMPLATES == {T.DEDUCTION_NOTICE, T.RESTORE_NOTICE}


def test_the_new_amount_replaces_the_old_and_nothing_else_changes() -> None:
    revised = revise(FIELDS, change(2_345, 30_000))
    assert revised == NoticeFields(product_name="企信通", product_no="CP20261101",
                                   amount_fen=2_345, date=date(2026, 11, 25),
                                   account_manager_name="张伟", group_name="某某科技有限公司")


def test_an_account_total_is_revised_where_the_message_carries_one() -> None:
    with_total = NoticeFields("企信通", "CP1", 12_345, account_amount_fen=50_000)
    assert revise(with_total, change(2_345, 40_000)) == NoticeFields(
        "企信通", "CP1", 2_345, account_amount_fen=40_000)


def test_nothing_owed_of_its_own_cancels_instead_of_saying_zero() -> None:
    assert revise(FIELDS, change(0, 10_000)) is None
    assert revisions([Waiting("m1", FIELDS, DEFAULT_TEMPLATES[T.BILL_NOTICE])], change(0)) == [
        Revised("m1", None)]


def test_a_cancellation_pending_is_kept_by_nothing_owed_and_undone_by_owing_again() -> None:
    """A message claimed for sending carries the revision it is owed (repository _REVISE): a
    second 'nothing owed' adds nothing; owing again — even the amount it was made with —
    replaces the cancellation with that amount."""
    claimed = Waiting("m1", FIELDS, DEFAULT_TEMPLATES[T.BILL_NOTICE], cancelling=True)
    assert revisions([claimed], change(0)) == []
    [r] = revisions([claimed], change(12_345))
    assert (r.fields, r.text) == (FIELDS, render(DEFAULT_TEMPLATES[T.BILL_NOTICE], FIELDS))


def test_the_bill_notice_says_the_amount_left_after_a_partial_payment() -> None:
    [r] = revisions([Waiting("m1", FIELDS, DEFAULT_TEMPLATES[T.BILL_NOTICE])], change(2_345))
    assert r.text == ("尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)目前有"
                      "23.45元话费未缴清,请于11月25日前及时缴费以免影响您的集团产品服务。谢谢。")
    assert (r.message_id, r.fields, r.segments) == ("m1", revise(FIELDS, change(2_345)), 2)


def test_the_wording_of_the_version_the_message_was_made_with_is_kept() -> None:
    older = "您的集团产品CPNAME尚欠XX元,请于MM月DD日前缴费。"  # a version since replaced
    [r] = revisions([Waiting("m1", FIELDS, older)], change(2_345))
    assert r.text == "您的集团产品企信通尚欠23.45元,请于11月25日前缴费。"
    assert r.segments == 1


def test_a_message_already_saying_the_amount_is_left_alone() -> None:
    """The same change heard again (re-published under a new event id) revises nothing."""
    assert revisions([Waiting("m1", FIELDS, DEFAULT_TEMPLATES[T.BILL_NOTICE])],
                     change(12_345)) == []


def test_the_managers_notice_keeps_its_template_and_renders_both_amounts_again() -> None:
    """停机通知 B with the account's total stays that template (its message id is made from
    it); both XX and ACCOUNTXX say what holds now."""
    ctx = msgspec.structs.replace(CTX, account_amount_due_fen=50_000)
    [manager] = [n for n in notices_for(changed(S.SUSPEND_REQUESTED, S.SUSPENDED, ctx=ctx))
                 if n.template is T.SUSPENSION_NOTICE_MANAGER_ACCOUNT]
    [r] = revisions([Waiting("m1", manager.fields,
                             DEFAULT_TEMPLATES[T.SUSPENSION_NOTICE_MANAGER_ACCOUNT])],
                    change(2_345, 20_000))
    assert r.text == ("张伟,您好!您看管集团某某科技有限公司的集团产品企信通(产品编号:CP20261101)"
                      "尚有23.45元欠费,现已被停用该集团产品服务(该账户合计欠费200.00元),"
                      "请及时通知该集团产品联系人缴清欠费。")


@pytest.mark.parametrize("what", ["bill notice", "deduction collected"])
def test_the_stored_fields_read_back_as_rendered(what: str) -> None:
    n = notices_for(collected(500) if what == "deduction collected"
                    else decision(DecisionType.BILL_NOTICE))[0]
    stored = fields_json(n.fields)
    assert fields_from(stored) == n.fields
    assert fields_from(orjson.loads(stored)) == n.fields  # as the driver reads it


@given(amount=st.integers(min_value=1, max_value=10**12),
       account=st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)))
def test_a_revision_never_quotes_anything_but_the_new_amounts(
    amount: int, account: int | None,
) -> None:
    fields = NoticeFields("企信通", "CP1", 12_345, account_amount_fen=account)
    revised = revise(fields, change(amount, 7_777))
    assert revised is not None and revised.amount_fen == amount
    assert revised.account_amount_fen == (None if account is None else 7_777)
    assert "XX" not in render(DEFAULT_TEMPLATES[T.SUSPENSION_NOTICE_MANAGER_ACCOUNT], revised)


@pytest.mark.parametrize("what", ["amount change", "deduction collected"])
def test_the_consumer_hands_it_on_like_a_credit_event(what: str) -> None:
    event = change(2_345) if what == "amount change" else collected(1_234)
    env: RawEnvelope = CONTRACTS.decode(to_bytes(wrap(
        event, key=event.account_id, source="credit-control", occurred_at=AT)))
    assert _credit_event(env, env.payload) == event


# --- a threat withdrawn: the product became exempt (credit.exemption_changed) -------------

CURRENT = {name: (1, text) for name, text in DEFAULT_TEMPLATES.items()}
WARNING_3_EXEMPT_TEXT = ("尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)仍有"
                         "123.45元欠费未缴清,此为第三次欠费提醒,请于11月25日前及时缴费。谢谢。")


def test_a_waiting_warning_3_becomes_warning_3_exempt_with_the_same_fields() -> None:
    waiting = Waiting("m1", FIELDS, DEFAULT_TEMPLATES[T.WARNING_3], template=T.WARNING_3)
    [r] = exempt_revisions([waiting], CURRENT)
    assert r == Revised("m1", FIELDS, WARNING_3_EXEMPT_TEXT, 2, T.WARNING_3_EXEMPT, 1,
                        exempt_note(T.WARNING_3_EXEMPT))
    assert r.text is not None and "停用" not in r.text
    assert "停用" in render(DEFAULT_TEMPLATES[T.WARNING_3], FIELDS)
    assert r.note is not None and "warning_3_exempt" in r.note


def test_the_exempt_variant_is_rendered_in_its_current_version() -> None:
    """Made with warning_3, it never had a warning_3_exempt version: it takes the one a
    message made now for the exempt product would take."""
    current = {**CURRENT, T.WARNING_3_EXEMPT: (4, "CPNAME(CPNO)欠XX元,MM月DD日前缴清。")}
    [r] = exempt_revisions([Waiting("m1", FIELDS, "old words XX", template=T.WARNING_3)],
                           current)
    assert (r.text, r.template_version, r.segments) == (
        "企信通(CP20261101)欠123.45元,11月25日前缴清。", 4, 1)


@pytest.mark.parametrize("template", sorted(set(TemplateName) - {T.WARNING_3}))
def test_no_other_template_is_rendered_again(template: TemplateName) -> None:
    """Only a template that threatens suspension has an exempt variant; a suspension warning
    is nothing but the threat and is cancelled instead (recheck.RULES); the exempt variant
    itself, and the notices of what happened, stay."""
    waiting = Waiting("m1", FIELDS, DEFAULT_TEMPLATES[template], template=template)
    assert exempt_revisions([waiting], CURRENT) == []


def test_one_to_be_cancelled_for_nothing_owed_is_left_to_that() -> None:
    cancelling = Waiting("m1", FIELDS, DEFAULT_TEMPLATES[T.WARNING_3], cancelling=True,
                         template=T.WARNING_3)
    assert exempt_revisions([cancelling], CURRENT) == []


def test_an_amount_revision_keeps_the_template_a_withdrawn_threat_gave() -> None:
    """Exempt first, then a partial payment: the new amount in the exempt variant's words
    (the read gives the message's template and the text of its version)."""
    exempt = Waiting("m1", FIELDS, DEFAULT_TEMPLATES[T.WARNING_3_EXEMPT],
                     template=T.WARNING_3_EXEMPT)
    [r] = revisions([exempt], change(2_345))
    assert r.template is None and r.text is not None  # its template is not touched
    assert r.text == WARNING_3_EXEMPT_TEXT.replace("123.45元", "23.45元")
