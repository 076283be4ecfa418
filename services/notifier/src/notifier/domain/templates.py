"""The SMS templates: the seed's five (seed 000) word for word, the texts the seed lacks in its
style, how they are checked, rendered and counted. Pure.

Placeholders are the seed's own tokens: CPNAME product name, CPNO product number, XX amount
in yuan, MM月DD日 / YYYY年MM月DD日 dates, KHJLNAME account manager, JTNAME group name.
The seed prints the service number once as "100868"; 10086 is the operator's number.
"""

import datetime as dt
import functools
import re
from dataclasses import dataclass
from enum import StrEnum

from common.money import fen_to_yuan_text


class Role(StrEnum):
    GROUP_CONTACT = "group_contact"
    ACCOUNT_MANAGER = "account_manager"


class TemplateName(StrEnum):
    BILL_NOTICE = "bill_notice"  # 话费通知
    WARNING_1 = "warning_1"  # 欠费预警
    WARNING_2 = "warning_2"  # 二次预警
    WARNING_3 = "warning_3"  # 三次预警
    WARNING_3_EXEMPT = "warning_3_exempt"  # 三次预警, exempt from suspension: no threat
    SUSPENSION_WARNING = "suspension_warning"  # 停机预警
    SUSPENSION_NOTICE_CONTACT = "suspension_notice_contact"  # 停机通知 A
    SUSPENSION_NOTICE_MANAGER = "suspension_notice_manager"  # 停机通知 B
    RESTORE_NOTICE = "restore_notice"  # 开机通知
    DEDUCTION_NOTICE = "deduction_notice"  # 划扣通知
    PRE_CANCEL_NOTICE = "pre_cancel_notice"  # 预拆机通知, group contact
    PRE_CANCEL_NOTICE_MANAGER = "pre_cancel_notice_manager"  # 预拆机通知, account manager
    PAYMENT_REVERSED_NOTICE = "payment_reversed_notice"  # 冲正/退票通知
    # 停机通知 B with the account's total, when it differs from the product's amount
    SUSPENSION_NOTICE_MANAGER_ACCOUNT = "suspension_notice_manager_account"


class DateSource(StrEnum):
    DEADLINE = "deadline"  # 请于MM月DD日前 / 如在YYYY年MM月DD日前
    AS_OF = "as_of"  # 截至YYYY年MM月DD日: the day of the decision


class AmountSource(StrEnum):
    DUE = "due"  # what the product owes
    DEDUCTION = "deduction"  # what the deduction collected (划扣): DeductionCollected


@dataclass(frozen=True)
class TemplateSpec:
    name: TemplateName
    title: str  # the seed's word for it
    trigger: str  # the decision (and warning level) or the state change that sends it
    role: Role
    default_text: str
    from_seed: bool  # True: seed 000's text; False: ours, in the seed's style
    date_source: DateSource = DateSource.DEADLINE
    amount_source: AmountSource = AmountSource.DUE


_C, _M = Role.GROUP_CONTACT, Role.ACCOUNT_MANAGER
T = TemplateName
SPECS: dict[TemplateName, TemplateSpec] = {s.name: s for s in (
    TemplateSpec(T.BILL_NOTICE, "话费通知", "decision:bill_notice", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)目前有XX元话费未缴清,请于MM月DD日前及时缴费以免影响您的集团产品服务。谢谢。",
                 from_seed=True),
    TemplateSpec(T.WARNING_1, "欠费预警", "decision:warning:1", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)已欠费XX元,请于MM月DD日前及时缴费以免影响您的集团产品服务。谢谢。",
                 from_seed=False),
    TemplateSpec(T.WARNING_2, "二次预警", "decision:warning:2", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)仍有XX元欠费未缴清,此为第二次欠费提醒,请于MM月DD日前及时缴费以免影响您的集团产品服务。谢谢。",
                 from_seed=False),
    TemplateSpec(T.WARNING_3, "三次预警", "decision:warning:3", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)仍有XX元欠费未缴清,此为第三次欠费提醒,请于MM月DD日前及时缴费,逾期将停用您的集团产品服务。谢谢。",
                 from_seed=False),
    # For a product exempt from suspension (red list, emergency no-suspension): warning_3
    # without its "逾期将停用" sentence; nothing is threatened that will not follow.
    TemplateSpec(T.WARNING_3_EXEMPT, "三次预警(免停)", "decision:warning:3, suspension_exempt", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)仍有XX元欠费未缴清,此为第三次欠费提醒,请于MM月DD日前及时缴费。谢谢。",
                 from_seed=False),
    TemplateSpec(T.SUSPENSION_WARNING, "停机预警", "decision:suspension_warning", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)尚有XX元话费未缴清,请及时缴费。如在YYYY年MM月DD日前仍未缴清费用,将停用您的集团产品服务。",
                 from_seed=True),
    TemplateSpec(T.SUSPENSION_NOTICE_CONTACT, "停机通知A", "state:suspended", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)截至YYYY年MM月DD日尚有XX元欠费未缴纳,现已正式停用,请安排时间缴清费用以续用您的集团产品。如有其他事宜可咨询您的客户经理或10086,谢谢!",
                 from_seed=True, date_source=DateSource.AS_OF),
    TemplateSpec(T.SUSPENSION_NOTICE_MANAGER, "停机通知B", "state:suspended", _M,
                 "KHJLNAME,您好!您看管集团JTNAME的集团产品CPNAME(产品编号:CPNO)尚有XX元欠费,现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。",
                 from_seed=True, date_source=DateSource.AS_OF),
    # Not the seed's B: B itself is never altered; this variant adds the account's total for
    # the manager when the account owes more than this product (several products).
    TemplateSpec(T.SUSPENSION_NOTICE_MANAGER_ACCOUNT, "停机通知B(含账户合计)", "state:suspended, account total differs", _M,
                 "KHJLNAME,您好!您看管集团JTNAME的集团产品CPNAME(产品编号:CPNO)尚有XX元欠费,现已被停用该集团产品服务(该账户合计欠费ACCOUNTXX元),请及时通知该集团产品联系人缴清欠费。",
                 from_seed=False, date_source=DateSource.AS_OF),
    TemplateSpec(T.RESTORE_NOTICE, "开机通知", "state:normal", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)已可正常使用,如有疑问可咨询您的客户经理或10086,谢谢!",
                 from_seed=True, date_source=DateSource.AS_OF),
    TemplateSpec(T.DEDUCTION_NOTICE, "划扣通知", "credit.deduction_collected", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)的欠费已根据约定于YYYY年MM月DD日从您的预存款中划扣XX元缴纳。如有疑问可咨询您的客户经理或10086,谢谢!",
                 from_seed=False, date_source=DateSource.AS_OF,
                 amount_source=AmountSource.DEDUCTION),
    TemplateSpec(T.PRE_CANCEL_NOTICE, "预拆机通知", "decision:pre_cancel", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)因欠费XX元停用已超过保号期,将于YYYY年MM月DD日进行预拆机处理,请尽快缴清欠费。如有疑问可咨询您的客户经理或10086,谢谢!",
                 from_seed=False),
    TemplateSpec(T.PRE_CANCEL_NOTICE_MANAGER, "预拆机通知(客户经理)", "decision:pre_cancel", _M,
                 "KHJLNAME,您好!您看管集团JTNAME的集团产品CPNAME(产品编号:CPNO)尚有XX元欠费,停用已超过保号期,将于YYYY年MM月DD日进行预拆机处理,请及时通知该集团产品联系人缴清欠费。",
                 from_seed=False),
    # A reversed (bounced) payment re-opened the product's arrears: say why it owes again.
    TemplateSpec(T.PAYMENT_REVERSED_NOTICE, "冲正/退票通知", "decision:payment_reversed", _C,
                 "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)此前的缴费已被冲正(退票),目前尚有XX元话费未缴清,请于MM月DD日前及时缴费以免影响您的集团产品服务。如有疑问可咨询您的客户经理或10086,谢谢!",
                 from_seed=False),
)}

DEFAULT_TEMPLATES: dict[TemplateName, str] = {n: s.default_text for n, s in SPECS.items()}
SEED_TEMPLATES: frozenset[TemplateName] = frozenset(n for n, s in SPECS.items() if s.from_seed)

# Each seed token and the field it is filled from.
PLACEHOLDERS: dict[str, str] = {
    "CPNAME": "product_name",
    "CPNO": "product_no",
    "XX": "amount_fen, in yuan with two decimals",
    "ACCOUNTXX": "account_amount_fen: the account's total amount due, in yuan (manager only)",
    "YYYY年MM月DD日": "date, long form",
    "MM月DD日": "date, short form",
    "KHJLNAME": "account_manager_name",
    "JTNAME": "group_name",
}

SINGLE_SMS_CHARS = 70  # UCS-2: one message holds 70 characters
SEGMENT_CHARS = 67  # a longer text goes out in 67-character segments (6 octets of header)
MAX_SEGMENTS = 5  # an operator's long SMS limit; longer templates are refused
MAX_TEMPLATE_CHARS = 300


@dataclass(frozen=True)
class NoticeFields:
    product_name: str
    product_no: str
    amount_fen: int  # XX
    date: dt.date | None = None  # YYYY年MM月DD日 or MM月DD日, whichever the template has
    account_manager_name: str = ""
    group_name: str = ""
    account_amount_fen: int | None = None  # ACCOUNTXX


def render(template: str, f: NoticeFields) -> str:
    """Replace the seed's tokens in one pass, so a product name can never be re-substituted."""
    parts = compile_template(template)
    values = {
        "CPNAME": f.product_name,
        "CPNO": f.product_no,
        "XX": fen_to_yuan_text(f.amount_fen),
        "KHJLNAME": f.account_manager_name,
        "JTNAME": f.group_name,
    }
    # Without an account total (older producers, another template), the product's amount:
    # a raw token never reaches a phone.
    values["ACCOUNTXX"] = fen_to_yuan_text(
        f.account_amount_fen if f.account_amount_fen is not None else f.amount_fen)
    if f.date is not None:
        values["YYYY年MM月DD日"] = f"{f.date.year:04d}年{f.date.month:02d}月{f.date.day:02d}日"
        values["MM月DD日"] = f"{f.date.month:02d}月{f.date.day:02d}日"
    out = list(parts)
    for i in range(1, len(parts), 2):  # the odd places hold the tokens
        out[i] = values.get(parts[i], parts[i])
    return "".join(out)


@functools.lru_cache(maxsize=256)
def compile_template(template: str) -> tuple[str, ...]:
    """Text and tokens alternating (text, token, text, …, text): split once per template
    text (so once per version), not once per message."""
    return tuple(_TOKENS.split(template))


# Longest first: YYYY年MM月DD日 contains MM月DD日, CPNAME and CPNO share a prefix,
# ACCOUNTXX ends in XX. The group
# makes re.split keep the tokens.
_TOKENS = re.compile("(YYYY年MM月DD日|MM月DD日|KHJLNAME|JTNAME|CPNAME|CPNO|ACCOUNTXX|XX)")
_DATE_TOKENS = re.compile("YYYY年MM月DD日|MM月DD日")
_WORD_TOKENS = frozenset({"CPNAME", "CPNO", "XX", "ACCOUNTXX", "KHJLNAME", "JTNAME"})
# What an operator might type meaning a placeholder: a run of capitals (ours are such runs),
# or a {name} / ${name} / {{name}} / %s style hole from another templating habit.
_CAPITALS = re.compile("[A-Z]{2,}")
_FOREIGN_HOLES = re.compile(r"\$?\{\{?[^{}]*\}?\}|%[sd]")


def unknown_placeholders(template: str) -> list[str]:
    """Tokens that look like placeholders but are not the seed's; in order of appearance."""
    without_dates = _DATE_TOKENS.sub("\x00", template)
    found = [w for w in _CAPITALS.findall(without_dates) if w not in _WORD_TOKENS]
    found += _FOREIGN_HOLES.findall(template)
    return list(dict.fromkeys(found))


def template_problems(template: str, name: TemplateName | None = None) -> list[str]:
    """Why a template text cannot be used (empty list: it can). For a named template also:
    it keeps which product (CPNO or CPNAME) and how much (XX; ACCOUNTXX in the manager's
    variant) its default text states, and a suspension or pre-cancellation notice its date
    (a threat with no date; either date form will do) and the product's number (CPNO: which
    product will be stopped); and the account's total (ACCOUNTXX) only ever goes to the
    account manager: a customer's message quotes the product's own amount
    (docs/notifier.md "Validation")."""
    problems = []
    if not template.strip():
        problems.append("the text is empty")
    if len(template) > MAX_TEMPLATE_CHARS:
        problems.append(f"the text has {len(template)} characters, at most "
                        f"{MAX_TEMPLATE_CHARS} are allowed")
    unknown = unknown_placeholders(template)
    if unknown:
        problems.append("unknown placeholders: " + ", ".join(unknown)
                        + "; known: " + ", ".join(PLACEHOLDERS))
    if name is not None:
        problems += _spec_problems(template, SPECS[name])
    return problems


def _spec_problems(template: str, spec: TemplateSpec) -> list[str]:
    threat = spec.name in _DATED_THREATS
    have = _facts_of(template, threat)
    needed = [t for t in _facts_of(spec.default_text, threat)
              if t in _STATED or (t == _DATE and threat)]
    problems = []
    either = {_DATE: _EITHER[_DATE]} if threat else _EITHER
    missing = [either.get(t, t) for t in needed if t not in have]
    if missing:
        problems.append(f"missing placeholders: {', '.join(missing)}; the {spec.title} "
                        "states each of them (its default text has them)")
    if "ACCOUNTXX" in have and spec.role is not Role.ACCOUNT_MANAGER:
        problems.append(f"ACCOUNTXX (the account's total) is for the account manager only; "
                        f"the {spec.title} goes to the group contact, who is told the "
                        "product's own amount (XX)")
    return problems


def _facts_of(template: str, threat: bool = False) -> list[str]:
    """The placeholders a text uses; either date form counts as one (a date), and so do the
    product's name and number (which product), except in a threat, which names the product
    it will stop by its number."""
    same = _SAME_IN_THREATS if threat else _SAME
    tokens = compile_template(template)[1::2]
    return list(dict.fromkeys(same.get(t, t) for t in tokens))


_DATE = "YYYY年MM月DD日"
_SAME = {"MM月DD日": _DATE, "CPNAME": "CPNO"}
_SAME_IN_THREATS = {"MM月DD日": _DATE}
_EITHER = {_DATE: "YYYY年MM月DD日 or MM月DD日", "CPNO": "CPNO or CPNAME"}
# What every notice keeps of its default text: which product, and how much (the product's
# own amount; the manager's variant also the account's total). Greetings and names may go.
_STATED = frozenset({"CPNO", "XX", "ACCOUNTXX"})
# The notices whose date is the day a sanction follows: without it, a threat with no date.
_DATED_THREATS = frozenset({TemplateName.SUSPENSION_WARNING, TemplateName.PRE_CANCEL_NOTICE,
                            TemplateName.PRE_CANCEL_NOTICE_MANAGER})


def ucs2_length(text: str) -> int:
    """Length in UCS-2 / UTF-16 code units: a character outside the BMP (an emoji) takes two."""
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    units = ucs2_length(text)
    if units <= SINGLE_SMS_CHARS:
        return 1
    if units == len(text):  # no surrogate pairs: no need to cut the text to count
        return -(-units // SEGMENT_CHARS)
    return len(split_segments(text))


def split_segments(text: str) -> list[str]:
    """The parts a long SMS is sent in; a surrogate pair is never cut in two."""
    units_total = ucs2_length(text)
    if units_total <= SINGLE_SMS_CHARS:
        return [text]
    if units_total == len(text):  # no surrogate pairs: plain slices (the common case)
        return [text[i:i + SEGMENT_CHARS] for i in range(0, len(text), SEGMENT_CHARS)]
    parts: list[str] = []
    current, units = "", 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > SEGMENT_CHARS:
            parts.append(current)
            current, units = "", 0
        current += ch
        units += width
    parts.append(current)
    return parts
