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
    # SMS on the timeline: templates, recipients and statuses (the notifier's)
    "warning_1": "欠费预警 warning 1",
    "warning_2": "二次预警 warning 2",
    "warning_3": "三次预警 warning 3",
    "warning_3_exempt": "三次预警（豁免） warning 3 exempt",
    "suspension_notice_contact": "停机通知 suspension notice (contact)",
    "suspension_notice_manager": "停机通知客户经理 suspension notice (manager)",
    "suspension_notice_manager_account": "停机通知客户经理 suspension notice (manager, account)",
    "restore_notice": "开机通知 restore notice",
    "deduction_notice": "划扣通知 deduction notice",
    "pre_cancel_notice": "预拆机通知 pre-cancel notice",
    "pre_cancel_notice_manager": "预拆机通知客户经理 pre-cancel notice (manager)",
    "payment_reversed_notice": "冲正通知 payment reversed notice",
    "group_contact": "集团联系人 group contact",
    "account_manager": "客户经理 account manager",
    "held": "暂缓 held",
    "pending": "待发 pending",
    "sending": "发送中 sending",
    "submitted": "已提交 submitted",
    "delivered": "已送达 delivered",
    "rejected": "被拒 rejected",
    "undeliverable": "无法送达 undeliverable",
    "dead_lettered": "死信 dead lettered",
    "cancelled": "已取消 cancelled",
    # chain steps on the timeline (the gateway-adapter's stages and outcomes)
    "chain_received": "链路受理 command received",
    "chain_boss": "BOSS 已处理 BOSS done",
    "chain_emos": "EMOS 已派单至网关 EMOS order sent to the gateway",
    "chain_gateway_ack": "网关已受理 gateway accepted",
    "chain_finished": "链路结束 chain finished",
    "chain_applied": "已生效 applied",
    "chain_failed": "失败 failed",
    "chain_timed_out": "超时 timed out",
    "chain_superseded": "被新指令取代 superseded",
    # work orders and exemptions (dashboard actions)
    "created": "新建 created",
    "assigned": "已接单 assigned",
    "done": "已办结 done",
    "failed": "失败 failed",
    "operator": "业务办理人员 operator",
    "product_manager": "产品经理 product manager",
    "group_billing_manager": "集团账务管理人员 group billing manager",
    "note": "备注 note",
    "fingerprint": "指纹 fingerprint",
    "as_of": "时点 as of",
    "exemption_id": "编号 exemption id",
}


def label(key: object) -> str:
    text = str(key)
    return LABELS.get(text, text.replace("_", " "))
