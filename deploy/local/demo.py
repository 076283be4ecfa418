"""A small demo data set, loaded through the public APIs. Every id is fixed, so loading it
again is a no-op (idempotent POSTs). The dates are fixed too, so the demo looks the same on
any day: bill month 2026-10 closed on 2026-11-02, then every rule day's sweep (the 10th,
15th, 25th and last day) of November and December 2026, with one customer paying on
2026-12-01 after its suspension.

What it leaves behind (docs/rules.md explains the days):
- 星河物流 (low, MAS/Huawei): suspended on 11-30 through the chain, paid 12-01 → restored;
- 晨光制造 (low, MAS/Jiaxun): suspended on 11-30, still suspended;
- 蓝海科技 (mid, SMS-direct): suspended on 12-31 (a mid-tier customer gets a month more);
- 青松教育 (high, ADC, 50.00 yuan deposit): 2nd warning, and a deduction on 12-15 that
  collects the deposit; not yet suspended (high tier: end of January);
- 远航工程 (low, work-order product): a manual suspension work order, open for an operator;
- 金桥银行 (low, ADC, on the red list): warned, never suspended;
- 白云医药 (mid, ADC): no charges: credit-control knows it from the product's master_data
  event, and it owes nothing, so nothing is decided.

Customer SMS decided outside 08:00–21:00 (Asia/Shanghai, the decision's business time) wait
as `held` for the next opening; the account manager's go out at once. Dates after today are
business time ahead of the clock: `make run` turns on simulation mode for that.

check_demo (`run.py --check`, in `make test`) checks this list against the loaded services:
change the demo and the list, and SHOWN below, together.
"""

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from common.clock import BUSINESS_TZ

GROUPS = [
    # (id, name, tier, product family, vendor, product name, charge fen, pays)
    ("demo-g1", "星河物流有限公司", "low", "MAS", "huawei", "华为CRM-MAS", 128_000, True),
    ("demo-g2", "蓝海科技股份有限公司", "mid", "SMS_DIRECT", None, "CRM-短信直联", 56_050, False),
    ("demo-g3", "青松教育集团", "high", "ADC", None, "集团手机报", 9_900, False),
    ("demo-g4", "晨光制造有限公司", "low", "MAS", "jiaxun", "嘉讯CRM-MAS", 30_000, False),
    ("demo-g5", "白云医药连锁", "mid", "ADC", None, "移动办公", 0, False),
    ("demo-g6", "远航工程集团", "low", "WORK_ORDER", None, "行业整体解决方案", 250_000, False),
    ("demo-g7", "金桥银行分行", "low", "ADC", None, "企信通", 4_500, False),
]
# The groups' county branches (区县分公司) of 东莞分公司, in GROUPS order (docs/billing.md).
REGIONS = ("南城", "东城", "莞城", "长安", "虎门", "常平")
DEPOSITS = {"demo-g3": 5_000}  # 青松教育's deposit: the deduction on 12-15 collects it
RED_LIST = ("demo-g7",)
# The products were opened before the history the demo replays (its first bill run is
# April's, on 2026-05-02): opened today, credit-control would date every decision of that
# history today, and the sweeps of past days would leave them alone.
OPENED = "2026-04-01T09:00:00+08:00"
RULE_DAYS = ("2026-11-10", "2026-11-15", "2026-11-25", "2026-11-30",
             "2026-12-10", "2026-12-15", "2026-12-25", "2026-12-31")


def load_demo(urls: dict[str, str], token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    billing = httpx.Client(base_url=urls["billing-events"], headers=headers, timeout=30)
    credit = httpx.Client(base_url=urls["credit-control"], headers=headers, timeout=30)
    _master_data(billing, credit)
    _history(billing)
    _post(billing, "/v1/bill-runs", {"bill_run_id": "demo-br-202610", "bill_month": "2026-10",
                                     "as_of": "2026-11-02T09:00:00+08:00"})
    owing = [f"{g[0]}-p1" for g in GROUPS if g[6]]
    _wait_for(credit, owing, lambda body: bool(body["decisions"]), "the bill run's notices")
    for day in RULE_DAYS[:4]:
        _notices_heard(credit, owing)
        _sweep(credit, day)
    # Pay only once the chain confirmed the suspension, so the demo shows the whole cycle.
    payers = [f"{g[0]}-p1" for g in GROUPS if g[7]]
    _wait_for(credit, payers, _suspended_or_done, "the suspensions")
    for gid, *_, fen, pays in GROUPS:
        if pays:
            _post(billing, "/v1/payments", {
                "payment_id": f"{gid}-pay1", "account_id": f"{gid}-acct", "amount_fen": fen,
                "paid_at": "2026-12-01T10:00:00+08:00"})
    _wait_for(credit, payers, lambda body: body["state"] == "normal", "the restores")
    for day in RULE_DAYS[4:]:
        _notices_heard(credit, owing)
        _sweep(credit, day)
    _worklists(credit)
    print(f"demo data loaded: {len(GROUPS)} groups, bill run 2026-10, "
          f"{len(RULE_DAYS)} sweeps, one payment, collections worklists")


def _worklists(credit: httpx.Client) -> None:
    """The call list (arrears above 500 yuan: 蓝海科技 and 远航工程; 星河物流 has paid), two
    phone attempts ending in a promise, a refusal with its cause (docs/collections.md).
    Fixed moments before the day this demo was written: worklist writes may not be dated
    ahead of the clock, and fixed ones keep a second load a no-op."""
    _post(credit, "/v1/worklists/refresh", {"as_of": "2026-11-20T09:00:00+08:00"})
    attempts = {
        "demo-g2": [("no_answer", "2026-11-20T10:00:00+08:00", {"note": "财务电话无人接听"}),
                    ("promised", "2026-11-21T15:00:00+08:00",
                     {"promised_date": "2026-12-05", "note": "财务答应12月5日前缴清"})],
        "demo-g6": [("refused", "2026-11-20T11:00:00+08:00",
                     {"refusal_reason": "客户称体验方案到期后未再使用, 拒付"})],
    }
    for gid, tries in attempts.items():
        found = credit.get("/v1/worklists", params={"account_id": f"{gid}-acct",
                                                   "kind": "call", "status": "all"})
        entry_id = found.json()[0]["entry_id"]
        for n, (outcome, at, extra) in enumerate(tries, start=1):
            _post(credit, f"/v1/worklists/{entry_id}/attempts", {
                "attempt_id": f"demo-wl-{gid}-{n}", "channel": "phone", "outcome": outcome,
                "at": at, **extra})
    g6 = credit.get("/v1/worklists", params={"account_id": "demo-g6-acct", "status": "all"})
    _post(credit, f"/v1/worklists/{g6.json()[0]['entry_id']}/cause",
          {"cause": "expired_promotion", "note": "体验营销方案到期未取消"})


def _master_data(billing: httpx.Client, credit: httpx.Client) -> None:
    for i, (gid, name, tier, family, vendor, product, fen, _) in enumerate(GROUPS, start=1):
        _post(billing, "/v1/customers", {
            "customer_id": gid, "name": name, "tier": tier,
            "account_manager": {"name": "陈经理", "phone": f"1390000{i:04d}"},
            "contacts": [{"name": "财务联系人", "phone": f"1380000{i:04d}"}]})
        # The county branch, set apart so a demo loaded before regions loads again (the
        # POST's body is as it was; the PUT changes nothing the second time).
        _put(billing, f"/v1/customers/{gid}", {
            "name": name, "tier": tier,
            "account_manager": {"name": "陈经理", "phone": f"1390000{i:04d}"},
            "contacts": [{"name": "财务联系人", "phone": f"1380000{i:04d}"}],
            "region": REGIONS[(i - 1) % len(REGIONS)]})
        _post(billing, "/v1/accounts", {"account_id": f"{gid}-acct", "customer_id": gid})
        _post_product(billing, {
            "product_id": f"{gid}-p1", "account_id": f"{gid}-acct", "cpno": f"CP-{gid}",
            "name": product, "family": family, "vendor": vendor})
        if fen:
            _post_charge(billing, {
                "charge_id": f"{gid}-c202610", "account_id": f"{gid}-acct",
                "product_id": f"{gid}-p1", "bill_month": "2026-10", "amount_fen": fen},
                "2026-10-31T18:00:00+08:00")
        if gid in DEPOSITS:
            _post(billing, "/v1/deposits", {
                "deposit_id": f"{gid}-dep1", "account_id": f"{gid}-acct",
                "amount_fen": DEPOSITS[gid], "received_at": "2026-10-08T10:00:00+08:00"})
        if gid in RED_LIST:
            _post(credit, "/v1/exemptions", {
                "exemption_id": f"{gid}-red", "customer_id": gid, "kind": "red_list",
                "reason": "重点行业客户, 经审批暂不自动停机", "approver": "集团账务管理员",
                "created_by": "demo"})


def _sweep(credit: httpx.Client, day: str) -> None:
    at = "20:00:00" if day.endswith(("30", "31")) else "09:00:00"
    _post(credit, "/v1/sweeps", {"sweep_id": f"demo-sweep-{day.replace('-', '')}",
                                 "as_of": f"{day}T{at}+08:00"})


def _notices_heard(credit: httpx.Client, products: list[str]) -> None:
    """A suspension follows only a suspension warning whose SMS reached the contact
    (docs/rules.md): let the last sweep's warnings be delivered before the next sweep."""
    _wait_for(credit, products, lambda body: body["state"] != "suspension_warned"
              or body["ladder"]["notice"]["status"] in ("delivered", "failed", "cancelled"),
              "the suspension warnings delivered")


def _suspended_or_done(body: dict[str, Any]) -> bool:
    """Suspended now, or an earlier load of the demo already went on to restore it."""
    return body["state"] == "suspended" or any(
        d["decision"] == "restore" for d in body["decisions"])


def _wait_for(
    credit: httpx.Client, products: list[str], done: Callable[[dict[str, Any]], bool], what: str
) -> None:
    """Effects travel through Kafka: wait until credit-control shows them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answers = [credit.get(f"/v1/products/{p}/credit") for p in products]
        if all(r.status_code == 200 and done(r.json()) for r in answers):
            return
        time.sleep(0.3)
    raise RuntimeError(f"credit-control did not show {what} within 60 s")


def _post(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    response = client.post(path, json=body)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"demo load failed at {path}: {response.status_code} {response.text}")


def _post_charge(billing: httpx.Client, body: dict[str, object], as_of: str) -> None:
    """A charge dated within its month: the demo's bill runs are dated in the past, and a
    bill run dated before a charge of its month is refused (a charge without `as_of` is
    recorded now)."""
    _post_dated(billing, "/v1/charges", body, as_of)


def _post_product(billing: httpx.Client, body: dict[str, object]) -> None:
    """A product opened at OPENED."""
    _post_dated(billing, "/v1/products", body, OPENED)


def _post_dated(billing: httpx.Client, path: str, body: dict[str, object], as_of: str) -> None:
    """`body` posted with its `as_of`. A demo loaded before it had one posted the same id
    without: the same id with another body is refused (409), so it is posted as it was."""
    response = billing.post(path, json={**body, "as_of": as_of})
    if response.status_code == 409 and "different request body" in response.text:
        response = billing.post(path, json=body)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"demo load failed at {path}: {response.status_code} "
                           f"{response.text}")


def _put(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    response = client.put(path, json=body)
    if response.status_code != 200:
        raise RuntimeError(f"demo load failed at {path}: {response.status_code} {response.text}")


# Six months of history for the dashboard's arrears-rate trend: 华信集团 (high, ADC) is billed
# 1,000,000 yuan a month from 2026-04 and pays most of it by the 20th of the next month, the
# rest by the 10th of the month after; what is still open at the end of the collection month
# falls from 0.90% to 0.38%, as in seed 000. Its October bill is paid on 11-20.
HISTORY_GROUP = "demo-h1"
HISTORY_MONTHLY_FEN = 100_000_000
HISTORY_LATE_FEN = {"04": 900_000, "05": 800_000, "06": 650_000, "07": 500_000,
                    "08": 420_000, "09": 380_000, "10": 0}


def _history(billing: httpx.Client) -> None:
    gid, acct = HISTORY_GROUP, f"{HISTORY_GROUP}-acct"
    _post(billing, "/v1/customers", {
        "customer_id": gid, "name": "华信集团", "tier": "high",
        "account_manager": {"name": "陈经理", "phone": "13900009999"},
        "contacts": [{"name": "财务联系人", "phone": "13800009999"}]})
    _post(billing, "/v1/accounts", {"account_id": acct, "customer_id": gid})
    _post_product(billing, {
        "product_id": f"{gid}-p1", "account_id": acct, "cpno": f"CP-{gid}",
        "name": "移动办公", "family": "ADC", "vendor": None, "channel": "直销"})
    steps: list[tuple[str, str, dict[str, object]]] = []
    for mm, late in HISTORY_LATE_FEN.items():
        month, nxt = f"2026-{mm}", f"2026-{int(mm) + 1:02d}"
        _post_charge(billing, {
            "charge_id": f"{gid}-c2026{mm}", "account_id": acct, "product_id": f"{gid}-p1",
            "bill_month": month, "amount_fen": HISTORY_MONTHLY_FEN}, f"{month}-28T18:00:00+08:00")
        if mm != "10":  # October's bill run is the demo's own
            steps.append((f"{nxt}-02T09:00:00", "/v1/bill-runs", {
                "bill_run_id": f"demo-br-2026{mm}", "bill_month": month,
                "as_of": f"{nxt}-02T09:00:00+08:00"}))
        steps.append((f"{nxt}-20T10:00:00", "/v1/payments", {
            "payment_id": f"{gid}-pay2026{mm}", "account_id": acct,
            "amount_fen": HISTORY_MONTHLY_FEN - late, "paid_at": f"{nxt}-20T10:00:00+08:00"}))
        if late:
            after = f"2026-{int(mm) + 2:02d}"
            steps.append((f"{after}-10T10:00:00", "/v1/payments", {
                "payment_id": f"{gid}-late2026{mm}", "account_id": acct, "amount_fen": late,
                "paid_at": f"{after}-10T10:00:00+08:00"}))
    for _, path, body in sorted(steps, key=lambda step: step[0]):
        _post(billing, path, body)


# What the list at the top promises, as the services show it once the demo is loaded
# (`run.py --check`, run by tests/e2e/test_make_run_demo.py). The loader waits only for what it
# needs to go on; these are the states a person opening the dashboard is told to expect.
@dataclass(frozen=True)
class Shown:
    state: str  # the product's credit state
    decided: tuple[tuple[str, str], ...] = ()  # (decision, business day), in this order
    never: tuple[str, ...] = ()  # decisions it must not have had
    sms: tuple[str, ...] = ()  # triggers of SMS the notifier made for it
    nothing_decided: bool = False


SHOWN = {
    "demo-g1": Shown("normal", (("suspend", "2026-11-30"), ("restore", "2026-12-01")),
                     sms=("suspension_warning", "suspended", "normal")),
    "demo-g4": Shown("suspended", (("suspend", "2026-11-30"),), never=("restore",),
                     sms=("suspended",)),
    "demo-g2": Shown("suspended", (("suspend", "2026-12-31"),), sms=("suspended",)),
    "demo-g3": Shown("warned", (("warning", "2026-12-10"), ("deduction", "2026-12-15")),
                     never=("suspension_warning", "suspend"), sms=("deduction",)),
    "demo-g6": Shown("suspend_requested", (("suspend", "2026-11-30"),)),
    "demo-g7": Shown("warned", (("warning", "2026-11-10"),),
                     never=("suspension_warning", "suspend"), sms=("warning",)),
    "demo-g5": Shown("normal", nothing_decided=True),
}
# 华信集团's arrears rate per bill month, percent, as the dashboard's trend draws it.
TREND = {"2026-04": 0.90, "2026-05": 0.80, "2026-06": 0.65, "2026-07": 0.50, "2026-08": 0.42,
         "2026-09": 0.38}


def check_demo(urls: dict[str, str], token: str, staff: dict[str, tuple[str, str]]) -> list[str]:
    """The promises not kept (none: the demo shows what it says). The last sweep's
    suspensions and their SMS travel through Kafka and the chain after the loader returns, so
    the services are asked again for up to 60 s before the answer is final."""
    headers = {"Authorization": f"Bearer {token}"}
    with (httpx.Client(base_url=urls["credit-control"], headers=headers, timeout=30) as credit,
          httpx.Client(base_url=urls["notifier"], headers=headers, timeout=30) as notifier):
        deadline = time.monotonic() + 60
        while True:
            try:
                broken = [*_products_broken(credit, notifier), *_worklists_broken(credit),
                          *_run_broken(urls, staff)]
            except httpx.HTTPError as exc:  # a service not answering is a promise broken
                broken = [f"{exc.request.url}: {exc!r}"]
            if not broken or time.monotonic() > deadline:
                return broken
            time.sleep(1)


def _products_broken(credit: httpx.Client, notifier: httpx.Client) -> Iterator[str]:
    names = {g[0]: g[1] for g in GROUPS}
    for gid, shown in SHOWN.items():
        who = f"{names[gid]} ({gid}-p1)"
        found = credit.get(f"/v1/products/{gid}-p1/credit")
        if found.status_code != 200:
            yield f"{who}: credit-control answers {found.status_code}"
            continue
        body = found.json()
        if body["state"] != shown.state:
            yield f"{who}: {body['state']}, not {shown.state}"
        had = [(d["decision"], _business_day(d["as_of"])) for d in body["decisions"]]
        if shown.nothing_decided and had:
            yield f"{who}: decided {had}, promised nothing"
        if not _in_order(shown.decided, had):
            yield f"{who}: decisions {had}, not {list(shown.decided)} in this order"
        if wrong := sorted({kind for kind, _ in had} & set(shown.never)):
            yield f"{who}: decided {wrong}, promised never"
        messages = notifier.get("/v1/messages", params={"product_id": f"{gid}-p1"})
        sent = {m["trigger"] for m in messages.json()} if messages.status_code == 200 else set()
        if missing := [t for t in shown.sms if t not in sent]:
            yield f"{who}: no SMS for {missing} (the notifier has {sorted(sent)})"
        yield from _particulars(gid, who, body)


def _particulars(gid: str, who: str, body: dict[str, Any]) -> Iterator[str]:
    if gid == "demo-g3":  # 2nd warning; the deduction collected the whole deposit
        owed = next(g[6] for g in GROUPS if g[0] == gid) - DEPOSITS[gid]
        if body["warning_level"] != 2 or body["facts"]["amount_due_fen"] != owed:
            yield (f"{who}: warning level {body['warning_level']} and "
                   f"{body['facts']['amount_due_fen']} fen due, not 2 and {owed}")
    if gid == "demo-g6" and not any(  # a suspension work order open for an operator
            o["action"] == "suspend" and o["status"] in ("created", "assigned")
            for o in body["work_orders"]):
        yield f"{who}: no open suspension work order ({body['work_orders']})"
    if gid in RED_LIST and not any(e["kind"] == "red_list" for e in body["exemptions"]):
        yield f"{who}: not on the red list ({body['exemptions']})"


def _worklists_broken(credit: httpx.Client) -> Iterator[str]:
    found = credit.get("/v1/worklists", params={"kind": "call", "status": "all"})
    if found.status_code != 200:
        yield f"the call list: credit-control answers {found.status_code}"
        return
    calls = {e["account_id"]: e for e in found.json()}
    promised = {"demo-g2-acct": ("promised", 2, None), "demo-g6-acct": ("refused", 1,
                                                                         "expired_promotion")}
    for account, (status, attempts, cause) in promised.items():
        entry = calls.get(account)
        shown = entry and (entry["status"], entry["attempts"], entry["cause"])
        if shown != (status, attempts, cause):
            yield f"the call list: {account} shows {shown}, not {(status, attempts, cause)}"
    if "demo-g1-acct" in calls:
        yield "the call list: demo-g1-acct is on it, but 星河物流 has paid"


def _run_broken(urls: dict[str, str], staff: dict[str, tuple[str, str]]) -> Iterator[str]:
    """What `make run` prints: four ready services, the sign-in form, the AsyncAPI page, and
    a staff token per role that opens the dashboard, whose trend is 华信集团's history."""
    for name, url in urls.items():
        if (status := httpx.get(f"{url}/readyz", timeout=10).status_code) != 200:
            yield f"{name}: /readyz answers {status}"
    credit = urls["credit-control"]
    for path in ("/dashboard/signin", "/asyncapi"):
        if (status := httpx.get(f"{credit}{path}", timeout=30).status_code) != 200:
            yield f"credit-control {path} answers {status}"
    pages = []
    for token, (subject, role) in staff.items():
        # The month fixed: the trend is the twelve bill months up to it, whatever today is.
        page = httpx.get(f"{credit}/dashboard", params={"month": "2026-10"}, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
        if page.status_code != 200:
            yield f"the dashboard refuses {subject} ({role}): {page.status_code}"
        else:
            pages.append(page.text)
    data = re.search(r'id="trend-data">(.*?)</script>', pages[0]) if pages else None
    trend = json.loads(data.group(1)) if data else {"labels": [], "rates": []}
    drawn = {m: None if r is None else round(r, 2)
             for m, r in zip(trend["labels"], trend["rates"], strict=False)}
    if {m: drawn.get(m) for m in TREND} != TREND:
        yield f"the dashboard's arrears-rate trend: {drawn}, not {TREND}"


def _business_day(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(BUSINESS_TZ).date().isoformat()


def _in_order(wanted: tuple[tuple[str, str], ...], had: list[tuple[str, str]]) -> bool:
    rest = iter(had)
    return all(step in rest for step in wanted)  # `in` moves the iterator on: a subsequence
