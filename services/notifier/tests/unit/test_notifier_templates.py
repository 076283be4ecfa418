"""notifier.domain.templates: the seed's five SMS, word for word, rendered and counted."""

import re
from datetime import date
from pathlib import Path

import pytest

from notifier.domain.templates import (
    DEFAULT_TEMPLATES,
    SEED_TEMPLATES,
    SPECS,
    NoticeFields,
    Role,
    TemplateName,
    render,
    segments,
    split_segments,
    template_problems,
    ucs2_length,
    unknown_placeholders,
)

T = TemplateName
FIELDS = NoticeFields(
    product_name="企信通", product_no="CP20261101", amount_fen=12345,
    date=date(2026, 11, 30), account_manager_name="张伟", group_name="某某科技有限公司",
)

EXPECTED = {
    T.BILL_NOTICE:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)目前有123.45元话费未缴清,"
        "请于11月30日前及时缴费以免影响您的集团产品服务。谢谢。",
    T.SUSPENSION_WARNING:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)尚有123.45元话费未缴清,"
        "请及时缴费。如在2026年11月30日前仍未缴清费用,将停用您的集团产品服务。",
    T.SUSPENSION_NOTICE_CONTACT:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)截至2026年11月30日尚有"
        "123.45元欠费未缴纳,现已正式停用,请安排时间缴清费用以续用您的集团产品。"
        "如有其他事宜可咨询您的客户经理或10086,谢谢!",
    T.SUSPENSION_NOTICE_MANAGER:
        "张伟,您好!您看管集团某某科技有限公司的集团产品企信通(产品编号:CP20261101)尚有123.45元欠费,"
        "现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。",
    T.RESTORE_NOTICE:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)已可正常使用,"
        "如有疑问可咨询您的客户经理或10086,谢谢!",
}

SEED_TEXTS = {
    T.BILL_NOTICE:
        "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)目前有XX元话费未缴清,"
        "请于MM月DD日前及时缴费以免影响您的集团产品服务。谢谢。",
    T.SUSPENSION_WARNING:
        "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)尚有XX元话费未缴清,请及时缴费。"
        "如在YYYY年MM月DD日前仍未缴清费用,将停用您的集团产品服务。",
    T.SUSPENSION_NOTICE_CONTACT:
        "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)截至YYYY年MM月DD日尚有XX元欠费"
        "未缴纳,现已正式停用,请安排时间缴清费用以续用您的集团产品。"
        "如有其他事宜可咨询您的客户经理或10086,谢谢!",
    T.SUSPENSION_NOTICE_MANAGER:
        "KHJLNAME,您好!您看管集团JTNAME的集团产品CPNAME(产品编号:CPNO)尚有XX元欠费,"
        "现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。",
    T.RESTORE_NOTICE:
        "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)已可正常使用,"
        "如有疑问可咨询您的客户经理或10086,谢谢!",
}


def _shared_dir() -> Path:
    """`shared/` sits beside the repository root (CI) — here /work/shared."""
    here = Path(__file__).resolve()
    root = next(p for p in here.parents if (p / "uv.lock").exists())
    return root.parent / "shared"


# Ours, in the seed's style, for what the seed has no text for (docs/notifier.md).
EXPECTED_OURS = {
    T.WARNING_1:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)已欠费123.45元,"
        "请于11月30日前及时缴费以免影响您的集团产品服务。谢谢。",
    T.WARNING_2:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)仍有123.45元欠费未缴清,"
        "此为第二次欠费提醒,请于11月30日前及时缴费以免影响您的集团产品服务。谢谢。",
    T.WARNING_3:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)仍有123.45元欠费未缴清,"
        "此为第三次欠费提醒,请于11月30日前及时缴费,逾期将停用您的集团产品服务。谢谢。",
    T.WARNING_3_EXEMPT:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)仍有123.45元欠费未缴清,"
        "此为第三次欠费提醒,请于11月30日前及时缴费。谢谢。",
    T.DEDUCTION_NOTICE:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)的欠费已根据约定于"
        "2026年11月30日从您的预存款中划扣123.45元缴纳。如有疑问可咨询您的客户经理或10086,谢谢!",
    T.PAYMENT_REVERSED_NOTICE:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)此前的缴费已被冲正(退票),"
        "目前尚有123.45元话费未缴清,请于11月30日前及时缴费以免影响您的集团产品服务。"
        "如有疑问可咨询您的客户经理或10086,谢谢!",
    T.PRE_CANCEL_NOTICE:
        "尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP20261101)因欠费123.45元停用已超过"
        "保号期,将于2026年11月30日进行预拆机处理,请尽快缴清欠费。如有疑问可咨询您的客户经理或10086,谢谢!",
    T.SUSPENSION_NOTICE_MANAGER_ACCOUNT:
        "张伟,您好!您看管集团某某科技有限公司的集团产品企信通(产品编号:CP20261101)尚有123.45元欠费,"
        "现已被停用该集团产品服务(该账户合计欠费123.45元),请及时通知该集团产品联系人缴清欠费。",
    T.PRE_CANCEL_NOTICE_MANAGER:
        "张伟,您好!您看管集团某某科技有限公司的集团产品企信通(产品编号:CP20261101)尚有123.45元欠费,"
        "停用已超过保号期,将于2026年11月30日进行预拆机处理,请及时通知该集团产品联系人缴清欠费。",
}


@pytest.mark.parametrize("name", list(T), ids=str)
def test_render_each_template(name: TemplateName) -> None:
    assert render(DEFAULT_TEMPLATES[name], FIELDS) == {**EXPECTED, **EXPECTED_OURS}[name]


def test_the_five_seed_templates_are_marked_as_the_seed_s() -> None:
    assert SEED_TEMPLATES == set(SEED_TEXTS) == set(EXPECTED)
    assert set(DEFAULT_TEMPLATES) == set(T) == set(SEED_TEXTS) | set(EXPECTED_OURS)


@pytest.mark.parametrize("name", list(T), ids=str)
def test_every_default_template_is_valid(name: TemplateName) -> None:
    assert template_problems(DEFAULT_TEMPLATES[name]) == []


def test_each_template_has_one_role() -> None:
    managers = {n for n, s in SPECS.items() if s.role is Role.ACCOUNT_MANAGER}
    assert managers == {T.SUSPENSION_NOTICE_MANAGER, T.SUSPENSION_NOTICE_MANAGER_ACCOUNT,
                        T.PRE_CANCEL_NOTICE_MANAGER}


@pytest.mark.parametrize("name", sorted(SEED_TEMPLATES), ids=str)
def test_default_templates_are_the_seed_texts(name: TemplateName) -> None:
    assert DEFAULT_TEMPLATES[name] == SEED_TEXTS[name]


@pytest.mark.parametrize("name", list(T), ids=str)
def test_rendered_texts_have_no_tokens_left(name: TemplateName) -> None:
    text = render(DEFAULT_TEMPLATES[name], FIELDS)
    for token in ("CPNAME", "CPNO", "XX", "YYYY", "MM", "DD", "KHJLNAME", "JTNAME"):
        assert token not in text


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0.00元"), (5, "0.05元"), (100, "1.00元"), (12345, "123.45元"),
     (1234567890, "12345678.90元")],
)
def test_amount_is_rendered_in_yuan_with_two_decimals(fen: int, text: str) -> None:
    fields = NoticeFields(product_name="企信通", product_no="CP1", amount_fen=fen)
    assert render("有XX元话费", fields) == f"有{text}话费"


@pytest.mark.parametrize(
    ("day", "long", "short"),
    [
        (date(2026, 11, 30), "2026年11月30日", "11月30日"),
        (date(2026, 3, 5), "2026年03月05日", "03月05日"),  # the seed's MM / DD: two digits
        (date(2028, 2, 29), "2028年02月29日", "02月29日"),
    ],
)
def test_dates(day: date, long: str, short: str) -> None:
    fields = NoticeFields(product_name="p", product_no="n", amount_fen=1, date=day)
    assert render("截至YYYY年MM月DD日", fields) == f"截至{long}"
    assert render("请于MM月DD日前", fields) == f"请于{short}前"


def test_without_a_date_the_date_tokens_are_left_alone() -> None:
    fields = NoticeFields(product_name="企信通", product_no="CP1", amount_fen=1)
    template = "请于MM月DD日前,截至YYYY年MM月DD日"
    assert render(template, fields) == template


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            NoticeFields(product_name="CPNO专线", product_no="CP20261101", amount_fen=100),
            "尊敬的中国移动客户,您好!您的集团产品CPNO专线(产品编号:CP20261101)已可正常使用,"
            "如有疑问可咨询您的客户经理或10086,谢谢!",
            id="product-name-contains-CPNO",
        ),
        pytest.param(
            NoticeFields(product_name="CPNAME", product_no="CPNO", amount_fen=100),
            "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)已可正常使用,"
            "如有疑问可咨询您的客户经理或10086,谢谢!",
            id="values-equal-to-tokens",
        ),
    ],
)
def test_values_are_never_re_substituted(fields: NoticeFields, expected: str) -> None:
    assert render(DEFAULT_TEMPLATES[T.RESTORE_NOTICE], fields) == expected


def test_manager_notice_with_token_like_names() -> None:
    fields = NoticeFields(
        product_name="XX元套餐MM月DD日", product_no="CPNAME", amount_fen=5,
        date=date(2026, 11, 30), account_manager_name="JTNAME", group_name="KHJLNAME集团",
    )
    assert render(DEFAULT_TEMPLATES[T.SUSPENSION_NOTICE_MANAGER], fields) == (
        "JTNAME,您好!您看管集团KHJLNAME集团的集团产品XX元套餐MM月DD日(产品编号:CPNAME)尚有0.05元欠费,"
        "现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。"
    )


@pytest.mark.parametrize(
    ("length", "count"),
    [(0, 1), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_segments(length: int, count: int) -> None:
    assert segments("信" * length) == count
    assert segments("x" * length) == count


@pytest.mark.parametrize(
    ("name", "length", "count"),
    [
        (T.BILL_NOTICE, 84, 2),
        (T.SUSPENSION_WARNING, 93, 2),
        (T.SUSPENSION_NOTICE_CONTACT, 118, 2),
        (T.SUSPENSION_NOTICE_MANAGER, 87, 2),
        (T.RESTORE_NOTICE, 69, 1),
    ],
    ids=str,
)
def test_rendered_seed_texts_segments(name: TemplateName, length: int, count: int) -> None:
    assert len(EXPECTED[name]) == length
    assert segments(EXPECTED[name]) == count


# --- the texts against the shared domain brief and the seed ---------------------------------

DOMAIN_ROWS = {
    "bill notice": T.BILL_NOTICE,
    "suspension warning": T.SUSPENSION_WARNING,
    "suspension notice 停机通知 (A)": T.SUSPENSION_NOTICE_CONTACT,
    "suspension notice 停机通知 (B)": T.SUSPENSION_NOTICE_MANAGER,
    "restore notice": T.RESTORE_NOTICE,
}


def test_default_templates_match_the_domain_brief() -> None:
    domain = _shared_dir() / "domain.md"
    if not domain.exists():
        pytest.skip(f"{domain} not present")
    section = domain.read_text(encoding="utf-8").split("## The SMS the system sends", 1)[1]
    section = section.split("\n## ", 1)[0]
    found: dict[TemplateName, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4:
            continue
        for prefix, name in DOMAIN_ROWS.items():
            if cells[0].startswith(prefix):
                found[name] = cells[3]
    assert found == {n: DEFAULT_TEMPLATES[n] for n in SEED_TEMPLATES}


# The seed (a PDF dump) prints the service number once as "100868" (see domain.md).
SEED_MISPRINTS = {T.SUSPENSION_NOTICE_CONTACT: ("或10086,", "或100868,")}


def test_default_templates_occur_in_seed_000() -> None:
    seeds = sorted((_shared_dir() / "seeds").glob("000_*.txt"))
    if not seeds:
        pytest.skip("seed 000 not present")
    text = seeds[0].read_text(encoding="utf-8")
    # page breaks in the dump: a blank line, indentation and the next page's number, "19、"
    text = re.sub(r"\n\s*\n\s*\d+、", "", text)
    for name in SEED_TEMPLATES:
        template = DEFAULT_TEMPLATES[name]
        if name in SEED_MISPRINTS:
            template = template.replace(*SEED_MISPRINTS[name])
        assert template in text, name


# --- validation: what a PUT /v1/templates is refused for --------------------------------

@pytest.mark.parametrize(("template", "unknown"), [
    ("您的集团产品CPNAME(产品编号:CPNO)", []),
    ("请于MM月DD日前,截至YYYY年MM月DD日,KHJLNAME,JTNAME,XX元", []),
    ("您好CUSTNAME", ["CUSTNAME"]),
    ("您的集团产品CPNAMEX", ["CPNAMEX"]),
    ("请于YYYY年MM月前", ["YYYY", "MM"]),
    ("请于DD日前", ["DD"]),
    ("尊敬的{name}", ["{name}"]),
    ("尊敬的${name}和{{ group }}", ["${name}", "{{ group }}"]),
    ("尊敬的%s", ["%s"]),
    ("欢迎使用app, 客服10086", []),  # lower case and digits are text
])
def test_unknown_placeholders(template: str, unknown: list[str]) -> None:
    assert unknown_placeholders(template) == unknown


def test_template_problems_say_what_is_wrong() -> None:
    assert template_problems("   ") == ["the text is empty"]
    [problem] = template_problems("您好CUSTNAME")
    assert problem.startswith("unknown placeholders: CUSTNAME; known: CPNAME, CPNO, XX")
    assert template_problems("信" * 301) == [
        "the text has 301 characters, at most 300 are allowed"]


# --- UCS-2 --------------------------------------------------------------------------------

def test_characters_outside_the_bmp_take_two_units() -> None:
    assert ucs2_length("信" * 69 + "😀") == 71
    assert segments("信" * 69 + "😀") == 2


@pytest.mark.parametrize("length", [70, 71, 134, 135, 300])
def test_split_segments_are_67_characters(length: int) -> None:
    text = "".join(chr(0x4E00 + i) for i in range(length))
    parts = split_segments(text)
    assert "".join(parts) == text
    assert len(parts) == segments(text)
    if length > 70:
        assert [len(p) for p in parts[:-1]] == [67] * (len(parts) - 1)


def test_a_surrogate_pair_is_never_cut() -> None:
    text = "信" * 66 + "😀" + "信" * 10
    parts = split_segments(text)
    assert parts[0] == "信" * 66
    assert parts[1].startswith("😀")


def test_a_named_template_keeps_its_facts_and_its_audience() -> None:
    """QA pass 28: a threat without its date, a notice without its product or amount, and
    the account's total in a customer's message are refused; wording may change freely."""
    from notifier.domain.templates import TemplateName as N
    from notifier.domain.templates import template_problems

    ok = "CPNAME欠XX元,请于MM月DD日前缴费"
    assert template_problems(ok, N.WARNING_3) == []
    assert template_problems("CPNO欠XX元,请及时缴费", N.WARNING_2) == []  # a reminder's date may go
    threat = "尊敬的客户,您的集团产品CPNAME(产品编号:CPNO)尚有XX元未缴,将停用您的集团产品服务。"
    [problem] = template_problems(threat, N.SUSPENSION_WARNING)
    assert problem.startswith("missing placeholders: YYYY年MM月DD日 or MM月DD日;")
    [problem] = template_problems("您的集团产品将于MM月DD日停用。", N.SUSPENSION_WARNING)
    assert problem.startswith("missing placeholders: CPNO, XX;")
    [problem] = template_problems("您的集团产品CPNAME欠XX元,将于MM月DD日停用。",
                                  N.SUSPENSION_WARNING)  # a threat names the product's number
    assert problem.startswith("missing placeholders: CPNO;")
    [problem] = template_problems("欠XX元,请于MM月DD日前缴费", N.BILL_NOTICE)
    assert problem.startswith("missing placeholders: CPNO or CPNAME;")
    total = "CPNAME(产品编号:CPNO)欠XX元,账户合计ACCOUNTXX元,请于MM月DD日前缴费"
    assert any("account manager only" in p for p in template_problems(total, N.BILL_NOTICE))
    assert template_problems(total.replace("请于MM月DD日前缴费", "KHJLNAME"),
                             N.SUSPENSION_NOTICE_MANAGER_ACCOUNT) == []
    assert template_problems(threat) == []  # unnamed: only the text's own problems
