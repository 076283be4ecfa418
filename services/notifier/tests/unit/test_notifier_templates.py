"""notifier.domain.templates: the seed's five SMS, word for word, rendered and counted."""

import re
from datetime import date
from pathlib import Path

import pytest

from notifier.domain.templates import (
    DEFAULT_TEMPLATES,
    NoticeFields,
    TemplateName,
    render,
    segments,
)

T = TemplateName
FIELDS = NoticeFields(
    product_name="企信通", product_no="CP20261101", amount_due_fen=12345,
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


@pytest.mark.parametrize("name", list(T), ids=str)
def test_render_each_template(name: TemplateName) -> None:
    assert render(DEFAULT_TEMPLATES[name], FIELDS) == EXPECTED[name]


def test_there_are_exactly_the_five_seed_templates() -> None:
    assert set(DEFAULT_TEMPLATES) == set(T) == set(SEED_TEXTS)
    assert len(T) == 5


@pytest.mark.parametrize("name", list(T), ids=str)
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
    fields = NoticeFields(product_name="企信通", product_no="CP1", amount_due_fen=fen)
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
    fields = NoticeFields(product_name="p", product_no="n", amount_due_fen=1, date=day)
    assert render("截至YYYY年MM月DD日", fields) == f"截至{long}"
    assert render("请于MM月DD日前", fields) == f"请于{short}前"


def test_without_a_date_the_date_tokens_are_left_alone() -> None:
    fields = NoticeFields(product_name="企信通", product_no="CP1", amount_due_fen=1)
    template = "请于MM月DD日前,截至YYYY年MM月DD日"
    assert render(template, fields) == template


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            NoticeFields(product_name="CPNO专线", product_no="CP20261101", amount_due_fen=100),
            "尊敬的中国移动客户,您好!您的集团产品CPNO专线(产品编号:CP20261101)已可正常使用,"
            "如有疑问可咨询您的客户经理或10086,谢谢!",
            id="product-name-contains-CPNO",
        ),
        pytest.param(
            NoticeFields(product_name="CPNAME", product_no="CPNO", amount_due_fen=100),
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
        product_name="XX元套餐MM月DD日", product_no="CPNAME", amount_due_fen=5,
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
    assert found == dict(DEFAULT_TEMPLATES)


# The seed (a PDF dump) prints the service number once as "100868" (see domain.md).
SEED_MISPRINTS = {T.SUSPENSION_NOTICE_CONTACT: ("或10086,", "或100868,")}


def test_default_templates_occur_in_seed_000() -> None:
    seeds = sorted((_shared_dir() / "seeds").glob("000_*.txt"))
    if not seeds:
        pytest.skip("seed 000 not present")
    text = seeds[0].read_text(encoding="utf-8")
    # page breaks in the dump: a blank line, indentation and the next page's number, "19、"
    text = re.sub(r"\n\s*\n\s*\d+、", "", text)
    for name, template in DEFAULT_TEMPLATES.items():
        if name in SEED_MISPRINTS:
            template = template.replace(*SEED_MISPRINTS[name])
        assert template in text, name
