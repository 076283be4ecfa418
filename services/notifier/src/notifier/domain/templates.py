"""The seed's SMS templates (seed 000), word for word, and how they are rendered. Pure.

Placeholders are the seed's own tokens: CPNAME product name, CPNO product number, XX amount
in yuan, MM月DD日 / YYYY年MM月DD日 dates, KHJLNAME account manager, JTNAME group name.
The seed prints the service number once as "100868"; 10086 is the operator's number.
"""

import datetime as dt
import math
import re
from dataclasses import dataclass
from enum import StrEnum

from common.money import fen_to_yuan_text


class TemplateName(StrEnum):
    BILL_NOTICE = "bill_notice"  # 话费通知
    SUSPENSION_WARNING = "suspension_warning"  # 停机预警
    SUSPENSION_NOTICE_CONTACT = "suspension_notice_contact"  # 停机通知 A
    SUSPENSION_NOTICE_MANAGER = "suspension_notice_manager"  # 停机通知 B
    RESTORE_NOTICE = "restore_notice"  # 开机通知


DEFAULT_TEMPLATES: dict[TemplateName, str] = {
    TemplateName.BILL_NOTICE: (
        "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)目前有XX元话费未缴清,请于MM月DD日前及时缴费以免影响您的集团产品服务。谢谢。"
    ),
    TemplateName.SUSPENSION_WARNING: (
        "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)尚有XX元话费未缴清,请及时缴费。如在YYYY年MM月DD日前仍未缴清费用,将停用您的集团产品服务。"
    ),
    TemplateName.SUSPENSION_NOTICE_CONTACT: (
        "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)截至YYYY年MM月DD日尚有XX元欠费未缴纳,现已正式停用,请安排时间缴清费用以续用您的集团产品。如有其他事宜可咨询您的客户经理或10086,谢谢!"
    ),
    TemplateName.SUSPENSION_NOTICE_MANAGER: (
        "KHJLNAME,您好!您看管集团JTNAME的集团产品CPNAME(产品编号:CPNO)尚有XX元欠费,现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。"
    ),
    TemplateName.RESTORE_NOTICE: (
        "尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)已可正常使用,如有疑问可咨询您的客户经理或10086,谢谢!"
    ),
}

SINGLE_SMS_CHARS = 70  # UCS-2: one message holds 70 characters
SEGMENT_CHARS = 67  # a longer text goes out in 67-character segments


@dataclass(frozen=True)
class NoticeFields:
    product_name: str
    product_no: str
    amount_due_fen: int
    date: dt.date | None = None  # YYYY年MM月DD日 or MM月DD日, whichever the template has
    account_manager_name: str = ""
    group_name: str = ""


def render(template: str, f: NoticeFields) -> str:
    """Replace the seed's tokens in one pass, so a product name can never be re-substituted."""
    values = {
        "CPNAME": f.product_name,
        "CPNO": f.product_no,
        "XX元": f"{fen_to_yuan_text(f.amount_due_fen)}元",
        "KHJLNAME": f.account_manager_name,
        "JTNAME": f.group_name,
    }
    if f.date is not None:
        values["YYYY年MM月DD日"] = f"{f.date.year:04d}年{f.date.month:02d}月{f.date.day:02d}日"
        values["MM月DD日"] = f"{f.date.month:02d}月{f.date.day:02d}日"
    return _TOKENS.sub(lambda m: values.get(m.group(0), m.group(0)), template)


# Longest first: YYYY年MM月DD日 contains MM月DD日, CPNAME and CPNO share a prefix.
_TOKENS = re.compile("YYYY年MM月DD日|MM月DD日|KHJLNAME|JTNAME|CPNAME|CPNO|XX元")


def segments(text: str) -> int:
    if len(text) <= SINGLE_SMS_CHARS:
        return 1
    return math.ceil(len(text) / SEGMENT_CHARS)
