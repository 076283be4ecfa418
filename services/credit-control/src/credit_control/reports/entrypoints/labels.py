"""The dashboard's words: Chinese first, the English after ("客户经理 manager"), for the keys
the pages show as column heads and row names (worklist columns, KPIs, states, aging buckets,
recovery windows, decisions). A key not listed shows as its words ("some_key" -> "some key"),
never silently dropped."""

from typing import Final

LABELS: Final[dict[str, str]] = {
    # collections worklist columns (dashboard._worklist_row)
    "account": "账户 account",
    "customer": "客户 customer",
    "manager_name": "客户经理 manager",
    "arrears_yuan": "欠费 (元) arrears",
    "oldest_month": "最早欠费月 oldest month",
    "status": "状态 status",
    "last_attempt": "最近催缴 last attempt",
    # KPIs (reports service)
    "arrears_rate": "欠费率 arrears rate",
    "reminder_timeliness": "提醒及时率 reminder timeliness",
    "emos_cross_month": "EMOS跨月 emos cross month",
    "missed_suspensions": "漏停 missed suspensions",
    "overdue_work_orders": "超时工单 overdue work orders",
    # recovery windows and aging buckets
    "current_month": "当月回收 current month",
    "three_months": "三个月回收 three months",
    "current": "当月 current",
    "one_month": "一个月 one month",
    "two_months": "两个月 two months",
    "three_plus_months": "三个月以上 three plus months",
    # credit states (common.contracts.credit_control.CreditState)
    "normal": "正常 normal",
    "warned": "已提醒 warned",
    "suspension_warned": "停机预警 suspension warned",
    "suspend_requested": "停机中 suspend requested",
    "suspended": "已停机 suspended",
    "restore_requested": "复机中 restore requested",
    "pre_cancel": "预拆机 pre cancel",
    # decisions (common.contracts.credit_control.DecisionType)
    "bill_notice": "话费通知 bill notice",
    "warning": "欠费预警 warning",
    "suspension_warning": "停机预警 suspension warning",
    "suspend": "停机 suspend",
    "restore": "开机 restore",
    "deduction": "划扣 deduction",
    "arrears_cleared": "欠费结清 arrears cleared",
    "payment_reversed": "支付冲正 payment reversed",
}


def label(key: object) -> str:
    text = str(key)
    return LABELS.get(text, text.replace("_", " "))
