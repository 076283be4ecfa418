"""Every decision type and state change, through notices_for and the default templates, to the
exact text each recipient gets: the seed's five character for character, ours as documented."""

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
from notifier.domain.notices import notices_for
from notifier.domain.templates import DEFAULT_TEMPLATES, render

D = DecisionType
AT = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
CTX = NoticeContext(
    customer=CustomerSnapshot(
        customer_id="C-9", name="某某物流集团", tier=Tier.HIGH,
        account_manager=Person(name="刘经理", phone="13900000009"),
        contacts=(Person(name="赵联系人", phone="13800000009"),)),
    product=ProductSnapshot(product_id="P-9", cpno="CP0009", name="企信通",
                            family=ProductFamily.ADC),
    amount_due_fen=98_765, as_of_date=date(2026, 11, 25), deadline=date(2026, 12, 5))
HEAD = "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP0009)"

DECISION_TEXTS: list[tuple[DecisionType, dict[str, int], list[tuple[str, str]]]] = [
    (D.BILL_NOTICE, {}, [("13800000009", HEAD + "目前有987.65元话费未缴清,请于12月05日前及时缴费"
                                           "以免影响您的集团产品服务。谢谢。")]),
    (D.WARNING, {"warning_level": 1}, [("13800000009", HEAD + "已欠费987.65元,请于12月05日前"
                                                            "及时缴费以免影响您的集团产品服务。谢谢。")]),
    (D.WARNING, {"warning_level": 2}, [("13800000009", HEAD + "仍有987.65元欠费未缴清,此为第二次"
                                        "欠费提醒,请于12月05日前及时缴费以免影响您的集团产品服务。谢谢。")]),
    (D.WARNING, {"warning_level": 3}, [("13800000009", HEAD + "仍有987.65元欠费未缴清,此为第三次"
                                        "欠费提醒,请于12月05日前及时缴费,逾期将停用您的集团产品服务。谢谢。")]),
    (D.SUSPENSION_WARNING, {}, [("13800000009", HEAD + "尚有987.65元话费未缴清,请及时缴费。"
                                 "如在2026年12月05日前仍未缴清费用,将停用您的集团产品服务。")]),
    # Billing's ask, not what it took: the notice follows DeductionCollected (below).
    (D.DEDUCTION, {"amount_fen": 50_000}, []),
    (D.PAYMENT_REVERSED, {}, [("13800000009", HEAD + "此前的缴费已被冲正(退票),目前尚有987.65元"
                               "话费未缴清,请于12月05日前及时缴费以免影响您的集团产品服务。"
                               "如有疑问可咨询您的客户经理或10086,谢谢!")]),
    (D.PRE_CANCEL, {}, [
        ("13800000009", HEAD + "因欠费987.65元停用已超过保号期,将于2026年12月05日进行预拆机处理,"
                               "请尽快缴清欠费。如有疑问可咨询您的客户经理或10086,谢谢!"),
        ("13900000009", "刘经理,您好!您看管集团某某物流集团的集团产品企信通(产品编号:CP0009)"
                        "尚有987.65元欠费,停用已超过保号期,将于2026年12月05日进行预拆机处理,"
                        "请及时通知该集团产品联系人缴清欠费。")]),
    (D.SUSPEND, {}, []),  # the notice follows the confirmed state change
    (D.RESTORE, {}, []),
    (D.ARREARS_CLEARED, {}, []),
]


def test_every_decision_type_is_covered() -> None:
    assert {kind for kind, _, _ in DECISION_TEXTS} == set(DecisionType)


@pytest.mark.parametrize(("kind", "extra", "expected"), DECISION_TEXTS,
                         ids=[f"{k}{e.get('warning_level', '')}" for k, e, _ in DECISION_TEXTS])
def test_decision_texts(
    kind: DecisionType, extra: dict[str, int], expected: list[tuple[str, str]]
) -> None:
    event = CreditDecisionMade(
        decision_id="d-9", account_id="A-9", product_id="P-9", decision=kind, rule_id="r",
        reason="why", state_before=CreditState.NORMAL, state_after=CreditState.WARNED,
        as_of=AT, context=CTX, **extra)
    got = [(n.recipient_phone, render(DEFAULT_TEMPLATES[n.template], n.fields))
           for n in notices_for(event)]
    assert got == expected


def test_deduction_collected_text() -> None:
    """A deduction already made is reported as made (issue 23: not "将于…划扣"), with what
    it really collected for the product, on the business day it did."""
    event = DeductionCollected(
        account_id="A-9", product_id="P-9", deduction_id="d-9", as_of=AT, sequence=3,
        collected_fen=50_000, context=CTX)
    got = [(n.recipient_phone, render(DEFAULT_TEMPLATES[n.template], n.fields))
           for n in notices_for(event)]
    assert got == [("13800000009", HEAD + "的欠费已根据约定于2026年11月25日从您的预存款中划扣"
                                          "500.00元缴纳。如有疑问可咨询您的客户经理或10086,谢谢!")]


EXEMPT = msgspec.structs.replace(CTX, suspension_exempt=True)
# An exempt product (red list, emergency no-suspension) is never threatened with suspension:
# warning_3 loses its "逾期将停用" sentence; the suspension warning is made but cancelled
# (receiving.py), the others say the same as for anyone.
EXEMPT_TEXTS: list[tuple[DecisionType, dict[str, int], str, list[str]]] = [
    (D.BILL_NOTICE, {}, "bill_notice", [DECISION_TEXTS[0][2][0][1]]),
    (D.WARNING, {"warning_level": 1}, "warning_1", [DECISION_TEXTS[1][2][0][1]]),
    (D.WARNING, {"warning_level": 2}, "warning_2", [DECISION_TEXTS[2][2][0][1]]),
    (D.WARNING, {"warning_level": 3}, "warning_3_exempt", [
        HEAD + "仍有987.65元欠费未缴清,此为第三次欠费提醒,请于12月05日前及时缴费。谢谢。"]),
    (D.SUSPENSION_WARNING, {}, "suspension_warning", [DECISION_TEXTS[4][2][0][1]]),
    (D.PAYMENT_REVERSED, {}, "payment_reversed_notice", [DECISION_TEXTS[6][2][0][1]]),
]


@pytest.mark.parametrize(("kind", "extra", "template", "texts"), EXEMPT_TEXTS,
                         ids=[t for _, _, t, _ in EXEMPT_TEXTS])
def test_exempt_products_get_no_threat(
    kind: DecisionType, extra: dict[str, int], template: str, texts: list[str]
) -> None:
    event = CreditDecisionMade(
        decision_id="d-9", account_id="A-9", product_id="P-9", decision=kind, rule_id="r",
        reason="why", state_before=CreditState.NORMAL, state_after=CreditState.WARNED,
        as_of=AT, context=EXEMPT, **extra)
    notices = notices_for(event)
    got = [render(DEFAULT_TEMPLATES[n.template], n.fields) for n in notices]
    assert [n.template.value for n in notices] == [template]
    assert got == texts
    if template != "suspension_warning":
        assert all("停用" not in text for text in got)


S = CreditState
SUSPENDED_A = (HEAD + "截至2026年11月25日尚有987.65元欠费未缴纳,现已正式停用,请安排时间缴清费用"
               "以续用您的集团产品。如有其他事宜可咨询您的客户经理或10086,谢谢!")
SUSPENDED_B = ("刘经理,您好!您看管集团某某物流集团的集团产品企信通(产品编号:CP0009)"
               "尚有987.65元欠费,现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。")
RESTORED = HEAD + "已可正常使用,如有疑问可咨询您的客户经理或10086,谢谢!"


@pytest.mark.parametrize(("before", "after", "expected"), [
    (S.SUSPEND_REQUESTED, S.SUSPENDED, [("13800000009", SUSPENDED_A),
                                        ("13900000009", SUSPENDED_B)]),
    (S.RESTORE_REQUESTED, S.NORMAL, [("13800000009", RESTORED)]),
    (S.SUSPENDED, S.NORMAL, [("13800000009", RESTORED)]),
    (S.WARNED, S.NORMAL, []),
], ids=str)
def test_state_change_texts(
    before: CreditState, after: CreditState, expected: list[tuple[str, str]]
) -> None:
    event = CreditStateChanged(account_id="A-9", product_id="P-9", decision_id="d-9",
                               state_before=before, state_after=after, as_of=AT, context=CTX)
    got = [(n.recipient_phone, render(DEFAULT_TEMPLATES[n.template], n.fields))
           for n in notices_for(event)]
    assert got == expected


@pytest.mark.parametrize(("total", "manager_text"), [
    (None, SUSPENDED_B),  # no account total: the seed's B
    (98_765, SUSPENDED_B),  # the product is all the account owes: the seed's B
    (240_725, "刘经理,您好!您看管集团某某物流集团的集团产品企信通(产品编号:CP0009)尚有987.65元欠费,"
              "现已被停用该集团产品服务(该账户合计欠费2407.25元),请及时通知该集团产品联系人缴清欠费。"),
], ids=str)
def test_the_manager_s_suspension_notice_may_add_the_account_total(
    total: int | None, manager_text: str
) -> None:
    ctx = msgspec.structs.replace(CTX, account_amount_due_fen=total)
    event = CreditStateChanged(account_id="A-9", product_id="P-9", decision_id="d-9",
                               state_before=S.SUSPEND_REQUESTED, state_after=S.SUSPENDED,
                               as_of=AT, context=ctx)
    got = [(n.recipient_phone, render(DEFAULT_TEMPLATES[n.template], n.fields))
           for n in notices_for(event)]
    # The contact's A always quotes the product's own amount.
    assert got == [("13800000009", SUSPENDED_A), ("13900000009", manager_text)]
