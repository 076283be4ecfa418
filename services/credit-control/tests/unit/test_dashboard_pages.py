"""The dashboard's words and its timeline (issue 20 point 7): column heads Chinese first with
the English after, never raw keys; each decision once on the timeline, its state change folded
into its row; money in yuan on it, in the reason and the inputs too."""

from datetime import UTC, datetime
from typing import Any

from credit_control.reports.domain.chain_steps import chain_steps
from credit_control.reports.entrypoints import dashboard
from credit_control.reports.entrypoints.labels import label

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _front_page(worklists: dict[str, list[dict[str, Any]]],
                work_orders: list[dict[str, Any]] | None = None, open_orders: int = 0,
                overdue: int = 0, orders_for: str = "") -> str:
    page = dashboard._page(
        "dashboard.html", None, month="2026-10", csv_reports=dashboard.CSV_REPORTS, as_of="",
        errors=[], trend=None, kpis=None, states={"as_of_date": "2026-11-30", "products": 3,
                                                  "states": {"suspended": 1, "normal": 2}},
        recovery=None, aging=None, work_orders=work_orders or [], overdue_ids=set(),
        work_orders_open=open_orders, work_orders_overdue=overdue, orders_for=orders_for,
        trend_json="{}", worklists=worklists)
    return bytes(page.body).decode()


def _order(n: int) -> dict[str, Any]:
    return {"work_order_id": f"WO{n}", "product_id": f"P{n}", "customer_id": "G1",
            "action": "suspend", "status": "created", "role": "operator", "assignee": None,
            "due_at": AT, "created_at": AT}


def test_the_open_work_orders_say_how_many_there_are_beyond_those_shown() -> None:
    html = _front_page({}, [_order(1), _order(2)], open_orders=75, overdue=40)
    assert "未结 75 张 open · 已超时 40 张 overdue" in html
    assert "显示超时优先的前 2 张 the 2 most overdue shown" in html
    assert 'data-work-order="WO1"' in html and 'data-work-order="WO2"' in html
    assert 'id="orders-for-all"' not in html  # not narrowed: nothing to widen


def test_the_open_work_orders_narrowed_to_one_customer_offer_the_way_back() -> None:
    html = _front_page({}, [_order(1)], open_orders=1, overdue=0, orders_for="G<1>")
    assert "G&lt;1&gt; 的未结 1 张 open · 已超时 0 张 overdue</p>" in html  # all shown: no cut
    assert 'value="G&lt;1&gt;"' in html and 'id="orders-for-all"' in html


def test_worklist_heads_are_chinese_first_not_raw_keys() -> None:
    row = dashboard._worklist_row({
        "account_id": "A1", "customer_name": "某科技", "manager_name": "王经理",
        "arrears_fen": 50_100, "oldest_month": "2026-10", "status": "open",
        "last_attempt": None})
    html = _front_page({"高额欠费电话催缴 (call)": [row]})
    for head in ("客户经理 manager", "欠费 (元) arrears", "账户 account", "客户 customer",
                 "最早欠费月 oldest month", "最近催缴 last attempt"):
        assert f"<th>{head}</th>" in html, head
    for raw in row:
        assert f"<th>{raw}</th>" not in html, raw
    assert "<td>501.00</td>" in html
    assert "<td>已停机 suspended</td>" in html and "信用状态 credit states" in html


def test_a_key_without_a_label_shows_as_words() -> None:
    assert label("manager_name") == "客户经理 manager"
    assert label("some_new_column") == "some new column"


def _decision(decision_id: str, kind: str, before: str, after: str,
              at: datetime = AT) -> dict[str, Any]:
    return {"decision_id": decision_id, "as_of": at, "decision": kind, "rule_id": "adc-r1",
            "rule_version": 3, "reason": "amount due 50000 fen since bill month 2026-10",
            "state_before": before, "state_after": after, "amount_fen": 50_000,
            "inputs": {"amount_due_fen": 50_000, "tier": "low",
                       "limits": [{"credit_limit_fen": -1_000}]}}


def _change(decision_id: str | None, before: str, after: str, at: datetime = AT,
            cause: str = "adc-r1: arrears") -> dict[str, Any]:
    return {"decision_id": decision_id, "at": at, "cause": cause, "state_before": before,
            "state_after": after}


def _product(decisions: list[dict[str, Any]], changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"product_id": "P1", "state": "suspended", "family": "ADC", "account_id": "A1",
            "customer_id": "G1", "exemptions": [], "work_orders": [], "messages": [],
            "facts": {"tier": "low", "star_level": None, "amount_due_fen": 50_000,
                      "balance_fen": -50_000},
            "decisions": decisions, "state_history": changes}


def test_each_decision_shows_once_with_its_state_change_folded_in() -> None:
    later = datetime(2026, 11, 30, 12, 5, tzinfo=UTC)
    product = _product(
        [_decision("D1", "suspension_warning", "warned", "suspension_warned"),
         _decision("D2", "suspend", "suspension_warned", "suspend_requested")],
        [_change("D1", "warned", "suspension_warned"),
         _change("D2", "suspension_warned", "suspend_requested", at=later),
         # The gateway's confirmation: a change no decision of its own made, kept as its row.
         _change("D2", "suspend_requested", "suspended", at=later, cause="gateway applied"),
         _change(None, "suspended", "suspended", at=later, cause="ladder restart")])
    events = dashboard._timeline(product)
    assert [(e["kind"], e["what"]) for e in events] == [
        ("decision", "suspension_warning"), ("decision", "suspend"),
        ("state", "gateway applied"), ("state", "ladder restart")]
    assert events[0]["changed_at"] is None  # recorded at the decision's own moment
    assert events[1]["changed_at"] == later

    html = bytes(dashboard._page("timeline.html", None, product=product,
                                 events=events).body).decode()
    assert html.count('<tr class="decision what-suspend"') == 1
    assert html.count('<tr class="state ') == 2
    assert "停机预警 suspension warning" in html and "已停机 suspended" in html
    assert "2026-11-30 20:05:00 北京时间" in html


def test_an_sms_row_names_its_template_recipient_and_status_chinese_first() -> None:
    product = _product([], [])
    product["messages"] = [{"decision_as_of": AT, "created_at": AT, "template": "warning_1",
                            "role": "group_contact", "status": "cancelled",
                            "status_reason": "paid before sending"}]
    html = bytes(dashboard._page("timeline.html", None, product=product,
                                 events=dashboard._timeline(product)).body).decode()
    assert '<tr class="sms what-warning_1">' in html
    assert "短信 SMS 欠费预警 warning 1 → 集团联系人 group contact: 已取消 cancelled" in html
    assert "paid before sending" in html


def test_money_on_the_timeline_is_in_yuan() -> None:
    product = _product([_decision("D1", "suspend", "suspension_warned", "suspend_requested")],
                       [_change("D1", "suspension_warned", "suspend_requested")])
    html = bytes(dashboard._page("timeline.html", None, product=product,
                                 events=dashboard._timeline(product)).body).decode()
    assert "amount due 500.00 元 since bill month 2026-10" in html
    assert "&#34;amount_due_yuan&#34;: &#34;500.00&#34;" in html
    assert "&#34;credit_limit_yuan&#34;: &#34;-10.00&#34;" in html
    assert " fen" not in html and "_fen" not in html and "50000" not in html


def _attempt(n: int, outcome: str | None, detail: str = "", **at: str) -> dict[str, Any]:
    stamps = {k: at.get(k) for k in ("received_at", "boss_at", "emos_at", "gateway_ack_at",
                                     "finished_at")}
    return {"command_id": "CMD1", "attempt": n, "action": "suspend", "sequence": 1,
            "outcome": outcome, "detail": detail, "emos_order_id": f"EO{n}", **stamps}


def test_chain_steps_show_each_stage_of_each_attempt_in_beijing_time() -> None:
    """The gateway chain's stages of a command (BOSS → EMOS → gateway) on the timeline, one
    row per stage reached, the last with its outcome; times as the gateway sends them (UTC
    text), shown in 北京时间 and ordered among the decisions by the instant."""
    chain = {"attempts": [
        _attempt(1, "failed", "no gateway adapter for 'x'", received_at="2026-11-30T12:00:01Z",
                 boss_at="2026-11-30T12:00:02Z", emos_at="2026-11-30T12:00:03Z",
                 finished_at="2026-11-30T12:00:04Z"),
        _attempt(2, None, received_at="2026-11-30T12:05:00Z", boss_at="2026-11-30T12:05:01Z"),
    ]}
    steps = chain_steps(chain)
    assert [(s["attempt"], s["stage"], s["outcome"]) for s in steps] == [
        (1, "received", None), (1, "boss", None), (1, "emos", None), (1, "finished", "failed"),
        (2, "received", None), (2, "boss", None)]
    assert chain_steps(None) == []
    product = _product([_decision("D1", "suspend", "suspension_warned", "suspend_requested")],
                       [])
    product["chain_steps"] = steps
    events = dashboard._timeline(product)
    assert [e["kind"] for e in events] == ["decision"] + ["chain"] * 6
    html = bytes(dashboard._page("timeline.html", None, product=product,
                                 events=events).body).decode()
    assert html.count('class="chain what-') == 6
    assert ("链路 chain · 停机 suspend 第 1 次 attempt: 链路结束 chain finished — 失败 failed"
            in html)
    assert "no gateway adapter for &#39;x&#39;" in html
    assert "EMOS 已派单至网关 EMOS order sent to the gateway" in html
    assert "2026-11-30 20:00:04 北京时间" in html and "2026-11-30 20:05:01 北京时间" in html
    assert "T12:00" not in html
