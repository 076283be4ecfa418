"""notifier.domain.notices: which SMS a credit event causes, to whom, with which fields."""

import uuid
from datetime import UTC, date, datetime

import msgspec
import pytest

from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    DeductionCollected,
    NoticeContext,
)
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import to_bytes, wrap
from notifier.domain.delivery import phone_problem
from notifier.domain.notices import Notice, Role, notices_for
from notifier.domain.templates import DEFAULT_TEMPLATES, NoticeFields, TemplateName, render
from notifier.entrypoints.consumer import CONTRACTS

S = CreditState
T = TemplateName
AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)

MANAGER = Person(name="张伟", phone="13900000001")
CONTACTS = (Person(name="李娜", phone="13800000001"), Person(name="王芳", phone="13800000002"))
CUSTOMER = CustomerSnapshot(customer_id="C-001", name="某某科技有限公司", tier=Tier.MID,
                            account_manager=MANAGER, contacts=CONTACTS)
PRODUCT = ProductSnapshot(product_id="P-001", cpno="CP20261101", name="企信通",
                          family=ProductFamily.MAS, vendor="huawei")
CTX = NoticeContext(customer=CUSTOMER, product=PRODUCT, amount_due_fen=12345,
                    as_of_date=date(2026, 11, 30), deadline=date(2026, 11, 25))


def decision(kind: DecisionType, decision_id: str = "d-1",
             ctx: NoticeContext = CTX, **extra: int) -> CreditDecisionMade:
    return CreditDecisionMade(
        decision_id=decision_id, account_id="A-001", product_id="P-001", decision=kind,
        rule_id="rule", reason="why", state_before=S.NORMAL, state_after=S.WARNED, as_of=AT,
        context=ctx, **extra,
    )


def changed(before: CreditState, after: CreditState, decision_id: str = "d-1",
            ctx: NoticeContext = CTX) -> CreditStateChanged:
    return CreditStateChanged(account_id="A-001", product_id="P-001", decision_id=decision_id,
                              state_before=before, state_after=after, as_of=AT, context=ctx)


def collected(collected_fen: int = 1_234, deduction_id: str = "ded-1",
              product_id: str = "P-001", ctx: NoticeContext = CTX,
              as_of: datetime = AT) -> DeductionCollected:
    """What billing's deduction `deduction_id` really paid of the product's arrears."""
    product = msgspec.structs.replace(ctx.product, product_id=product_id)
    return DeductionCollected(
        account_id="A-001", product_id=product_id, deduction_id=deduction_id, as_of=as_of,
        sequence=9, collected_fen=collected_fen,
        context=msgspec.structs.replace(ctx, product=product))


def summary(notices: list[Notice]) -> list[tuple[TemplateName, Role, str, str]]:
    return [(n.template, n.role, n.recipient_name, n.recipient_phone) for n in notices]


def to_contacts(template: TemplateName) -> list[tuple[TemplateName, Role, str, str]]:
    return [(template, Role.GROUP_CONTACT, c.name, c.phone) for c in CONTACTS]


# --- decisions ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "template"),
    [(DecisionType.BILL_NOTICE, T.BILL_NOTICE),
     (DecisionType.SUSPENSION_WARNING, T.SUSPENSION_WARNING)],
)
def test_notice_decisions_go_to_every_group_contact(
    kind: DecisionType, template: TemplateName
) -> None:
    notices = notices_for(decision(kind))
    assert summary(notices) == to_contacts(template)
    assert {n.source_id for n in notices} == {"decision:d-1"}
    expected_fields = NoticeFields(
        product_name="企信通", product_no="CP20261101", amount_fen=12345,
        date=date(2026, 11, 25), account_manager_name="张伟", group_name="某某科技有限公司",
    )
    assert all(n.fields == expected_fields for n in notices)


@pytest.mark.parametrize(
    "kind",
    [DecisionType.SUSPEND, DecisionType.RESTORE, DecisionType.ARREARS_CLEARED],
    ids=str,
)
def test_other_decisions_send_nothing(kind: DecisionType) -> None:
    """Suspend / restore notices follow the confirmed state change, not the decision."""
    assert notices_for(decision(kind)) == []


def test_bill_notice_text_end_to_end() -> None:
    [first, _] = notices_for(decision(DecisionType.BILL_NOTICE))
    assert render(DEFAULT_TEMPLATES[first.template], first.fields) == (
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)目前有123.45元话费未缴清,"
        "请于11月25日前及时缴费以免影响您的集团产品服务。谢谢。"
    )


def test_suspension_warning_text_end_to_end() -> None:
    ctx = msgspec.structs.replace(CTX, as_of_date=date(2026, 11, 25),
                                 deadline=date(2026, 11, 30))
    [first, _] = notices_for(decision(DecisionType.SUSPENSION_WARNING, ctx=ctx))
    assert render(DEFAULT_TEMPLATES[first.template], first.fields) == (
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)尚有123.45元话费未缴清,"
        "请及时缴费。如在2026年11月30日前仍未缴清费用,将停用您的集团产品服务。"
    )


@pytest.mark.parametrize(("level", "template"), [
    (None, T.WARNING_1), (1, T.WARNING_1), (2, T.WARNING_2), (3, T.WARNING_3),
    (7, T.WARNING_1),  # a level the notifier has no text for: the first warning's
])
def test_warnings_by_level(level: int | None, template: TemplateName) -> None:
    extra = {} if level is None else {"warning_level": level}
    notices = notices_for(decision(DecisionType.WARNING, **extra))
    assert summary(notices) == to_contacts(template)
    assert all(n.reminder and n.trigger == "warning" for n in notices)


@pytest.mark.parametrize(("level", "told", "template"), [
    (2, 1, T.WARNING_1),  # billed late: warning 2's day, no warning 1 given in this ladder
    (3, 2, T.WARNING_2),  # warning 2's day missed: "此为第二次", without the threat of 3
    (3, None, T.WARNING_3),
])
def test_a_warning_says_how_many_this_ladder_gave_not_its_step(
        level: int, told: int | None, template: TemplateName) -> None:
    """credit-control's ladder gives the step whose day has come; a product that reached it
    without the warnings before it is told the count (context.reminder_level)."""
    ctx = msgspec.structs.replace(CTX, reminder_level=told)
    notices = notices_for(decision(DecisionType.WARNING, ctx=ctx, warning_level=level))
    assert summary(notices) == to_contacts(template)
    exempt = msgspec.structs.replace(ctx, suspension_exempt=True)
    [n, *_] = notices_for(decision(DecisionType.WARNING, ctx=exempt, warning_level=level))
    assert n.template is (T.WARNING_3_EXEMPT if template is T.WARNING_3 else template)


def test_a_deduction_decision_sends_nothing() -> None:
    """It is billing's ask: the deposit may hold less, or pay another product's older bill.
    The notice follows what was really collected (DeductionCollected)."""
    assert notices_for(decision(DecisionType.DEDUCTION, amount_fen=5000)) == []


def test_deduction_notice_says_what_was_collected_on_the_business_day_it_was() -> None:
    """XX = collected_fen; the date = the Asia/Shanghai day of `as_of` (01:30 on the 1st
    there is still the 30th in UTC), not the context's day."""
    event = collected(1_234, as_of=datetime(2026, 11, 30, 17, 30, tzinfo=UTC),
                      ctx=msgspec.structs.replace(CTX, as_of_date=date(2026, 11, 28)))
    notices = notices_for(event)
    assert summary(notices) == to_contacts(T.DEDUCTION_NOTICE)
    assert {(n.fields.amount_fen, n.fields.date) for n in notices} == {(1_234, date(2026, 12, 1))}
    assert {(n.source_id, n.trigger, n.reminder) for n in notices} == {
        ("decision:ded-1", "deduction", False)}
    assert render(DEFAULT_TEMPLATES[T.DEDUCTION_NOTICE], notices[0].fields) == (
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)的欠费已根据约定于"
        "2026年12月01日从您的预存款中划扣12.34元缴纳。如有疑问可咨询您的客户经理或10086,谢谢!")


def test_pre_cancel_tells_contacts_and_the_manager() -> None:
    notices = notices_for(decision(DecisionType.PRE_CANCEL))
    assert summary(notices) == [
        *to_contacts(T.PRE_CANCEL_NOTICE),
        (T.PRE_CANCEL_NOTICE_MANAGER, Role.ACCOUNT_MANAGER, "张伟", "13900000001")]


def test_a_bill_notice_without_a_deadline_is_dated_the_decision_day() -> None:
    ctx = msgspec.structs.replace(CTX, deadline=None)
    [first, _] = notices_for(decision(DecisionType.BILL_NOTICE, ctx=ctx))
    assert first.fields.date == date(2026, 11, 30)


# --- state changes --------------------------------------------------------------------------

SUSPENDED_NOTICES = [*to_contacts(T.SUSPENSION_NOTICE_CONTACT),
                     (T.SUSPENSION_NOTICE_MANAGER, Role.ACCOUNT_MANAGER, "张伟", "13900000001")]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (S.SUSPEND_REQUESTED, S.SUSPENDED, SUSPENDED_NOTICES),  # chain confirmed
        (S.SUSPENSION_WARNED, S.SUSPENDED, SUSPENDED_NOTICES),  # ADC, at once
        (S.WARNED, S.SUSPENDED, SUSPENDED_NOTICES),
        (S.NORMAL, S.SUSPENDED, SUSPENDED_NOTICES),
        (S.SUSPENDED, S.NORMAL, to_contacts(T.RESTORE_NOTICE)),  # ADC restore
        (S.RESTORE_REQUESTED, S.NORMAL, to_contacts(T.RESTORE_NOTICE)),  # chain confirmed
        (S.PRE_CANCEL, S.NORMAL, to_contacts(T.RESTORE_NOTICE)),  # ADC pre-cancel paid
        (S.WARNED, S.NORMAL, []),  # arrears cleared: no SMS
        (S.SUSPENSION_WARNED, S.NORMAL, []),
        (S.NORMAL, S.WARNED, []),
        (S.NORMAL, S.SUSPENSION_WARNED, []),
        (S.WARNED, S.SUSPEND_REQUESTED, []),  # only an intention so far
        (S.SUSPENDED, S.RESTORE_REQUESTED, []),
        (S.SUSPEND_REQUESTED, S.RESTORE_REQUESTED, []),
        (S.PRE_CANCEL, S.RESTORE_REQUESTED, []),
        (S.SUSPENDED, S.PRE_CANCEL, []),
    ],
    ids=lambda v: str(v) if isinstance(v, CreditState) else "",
)
def test_state_changes(before: CreditState, after: CreditState, expected: list[object]) -> None:
    notices = notices_for(changed(before, after))
    assert summary(notices) == expected
    assert {n.source_id for n in notices} <= {f"state:d-1:{after.value}"}


@pytest.mark.parametrize(("was_suspended", "expected"), [
    (True, to_contacts(T.RESTORE_NOTICE)),
    (None, to_contacts(T.RESTORE_NOTICE)),  # an older producer: as before
    (False, []),  # the restore overtook a suspension the chain never confirmed
])
def test_restore_notice_only_when_the_service_had_stopped(
    was_suspended: bool | None, expected: list[object]
) -> None:
    event = msgspec.structs.replace(changed(S.RESTORE_REQUESTED, S.NORMAL),
                                    service_was_suspended=was_suspended)
    assert summary(notices_for(event)) == expected
    # The same through the wire and the consumer's decoder.
    received = CONTRACTS.decode(to_bytes(wrap(event, key="A-001", source="credit-control",
                                              occurred_at=AT))).payload
    assert summary(notices_for(received)) == expected


def test_suspension_notices_texts_end_to_end() -> None:
    notices = notices_for(changed(S.SUSPEND_REQUESTED, S.SUSPENDED))
    texts = [render(DEFAULT_TEMPLATES[n.template], n.fields) for n in notices]
    contact_text = (
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)截至2026年11月30日尚有"
        "123.45元欠费未缴纳,现已正式停用,请安排时间缴清费用以续用您的集团产品。"
        "如有其他事宜可咨询您的客户经理或10086,谢谢!"
    )
    manager_text = (
        "张伟,您好!您看管集团某某科技有限公司的集团产品企信通(产品编号:CP20261101)尚有123.45元欠费,"
        "现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。"
    )
    assert texts == [contact_text, contact_text, manager_text]


def test_suspension_notice_a_is_dated_as_of_the_decision_not_the_deadline() -> None:
    notices = notices_for(changed(S.SUSPEND_REQUESTED, S.SUSPENDED))
    assert notices[0].fields.date == date(2026, 11, 30)  # as_of_date, 截至YYYY年MM月DD日


def test_restore_notice_text_end_to_end() -> None:
    notices = notices_for(changed(S.RESTORE_REQUESTED, S.NORMAL))
    assert [render(DEFAULT_TEMPLATES[n.template], n.fields) for n in notices] == [
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)已可正常使用,"
        "如有疑问可咨询您的客户经理或10086,谢谢!"
    ] * 2


def test_customer_without_contacts_still_tells_the_manager() -> None:
    ctx = msgspec.structs.replace(CTX, customer=msgspec.structs.replace(CUSTOMER, contacts=()))
    assert summary(notices_for(changed(S.SUSPEND_REQUESTED, S.SUSPENDED, ctx=ctx))) == [
        (T.SUSPENSION_NOTICE_MANAGER, Role.ACCOUNT_MANAGER, "张伟", "13900000001")
    ]
    assert notices_for(decision(DecisionType.BILL_NOTICE, ctx=ctx)) == []
    assert notices_for(changed(S.SUSPENDED, S.NORMAL, ctx=ctx)) == []


def test_a_suspension_warning_without_contacts_is_one_undeliverable_message() -> None:
    """credit-control suspends only once the suspension warning was heard of: with no group
    contact on record it must still be, as an undeliverable message (outcome: failed,
    permanent), not as nothing at all."""
    ctx = msgspec.structs.replace(CTX, customer=msgspec.structs.replace(CUSTOMER, contacts=()))
    [notice] = notices_for(decision(DecisionType.SUSPENSION_WARNING, ctx=ctx))
    assert (notice.template, notice.role, notice.recipient_phone) == (
        T.SUSPENSION_WARNING, Role.GROUP_CONTACT, "")
    assert phone_problem(notice.recipient_phone) == "missing phone number"


# --- message ids --------------------------------------------------------------------------

EVENTS: list[CreditDecisionMade | CreditStateChanged | DeductionCollected] = [
    decision(DecisionType.BILL_NOTICE),
    decision(DecisionType.SUSPENSION_WARNING),
    changed(S.SUSPEND_REQUESTED, S.SUSPENDED),
    changed(S.RESTORE_REQUESTED, S.NORMAL),
    collected(),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_message_ids_are_deterministic(
    event: CreditDecisionMade | CreditStateChanged | DeductionCollected,
) -> None:
    first = [n.message_id for n in notices_for(event)]
    again = [n.message_id for n in notices_for(msgspec.structs.replace(event))]
    assert first == again
    assert all(str(uuid.UUID(m)) == m for m in first)


def test_message_ids_are_distinct_per_recipient_template_and_source() -> None:
    all_ids = [n.message_id for e in EVENTS for n in notices_for(e)]
    all_ids += [n.message_id for n in notices_for(decision(DecisionType.BILL_NOTICE, "d-2"))]
    all_ids += [n.message_id for n in notices_for(changed(S.SUSPEND_REQUESTED, S.SUSPENDED,
                                                          decision_id="d-2"))]
    # One deduction paying two products' arrears: a notice for each; and another deduction.
    all_ids += [n.message_id for n in notices_for(collected(product_id="P-002"))]
    all_ids += [n.message_id for n in notices_for(collected(deduction_id="ded-2"))]
    assert len(all_ids) == 2 + 2 + 3 + 2 + 2 + 2 + 3 + 2 + 2
    assert len(set(all_ids)) == len(all_ids)


def test_nothing_collected_tells_nothing() -> None:
    assert notices_for(collected(0)) == []


def test_what_a_deduction_collected_heard_again_is_the_same_notice() -> None:
    """Redelivered, or re-published under a new event id (perhaps another moment): the
    message ids come from the deduction, the product, the recipient and the template."""
    first = [n.message_id for n in notices_for(collected())]
    again = msgspec.structs.replace(collected(), as_of=datetime(2026, 12, 1, tzinfo=UTC),
                                    sequence=10)
    assert [n.message_id for n in notices_for(again)] == first


def test_manager_who_is_also_a_contact_gets_both_notices_with_distinct_ids() -> None:
    customer = msgspec.structs.replace(CUSTOMER, contacts=(MANAGER,))
    ctx = msgspec.structs.replace(CTX, customer=customer)
    notices = notices_for(changed(S.SUSPEND_REQUESTED, S.SUSPENDED, ctx=ctx))
    assert [n.recipient_phone for n in notices] == [MANAGER.phone, MANAGER.phone]
    assert notices[0].message_id != notices[1].message_id


def test_message_id_ignores_the_event_time() -> None:
    """A redelivered or re-published event must not cause a second SMS."""
    later = msgspec.structs.replace(changed(S.SUSPEND_REQUESTED, S.SUSPENDED),
                                    as_of=datetime(2026, 12, 1, tzinfo=UTC))
    assert [n.message_id for n in notices_for(later)] == [
        n.message_id for n in notices_for(changed(S.SUSPEND_REQUESTED, S.SUSPENDED))
    ]
