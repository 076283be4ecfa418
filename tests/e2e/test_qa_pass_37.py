"""QA pass 37: every customer message exactly right when it leaves, through the four running
services' HTTP APIs (billing-events for customers, accounts, products, charges, bill runs,
deposits, payments and reversals; credit-control's sweeps and exemptions; the notifier's
message log and what its simulated SMSC received).

Every expected text is the seed's template (seed 000, word for word, as domain.md quotes it)
or the notifier's documented default (docs/notifier.md "Templates"), written out here by hand
with the amount, date and names put in — never the notifier's own renderer. Each customer has
phone numbers of its own, so what the SMSC received for a number is this module's alone.

The story (one module fixture, shared by every test), low tier unless said:

- `two`: one account, two contacts; an ADC product owing 1,000,000.00 yuan and a Huawei MAS
  product owing 0.01 yuan, with names full of what could break a template (quotes, %s, {},
  the tokens CPNO / XX / JTNAME / KHJLNAME themselves, full-width brackets, a double space);
  billed for January on 02-01, warned 02-10, suspension-warned 02-25, suspended on February's
  last day (28th or 29th) by a sweep at 07:59:50 Asia/Shanghai (still the day before in UTC),
  pre-cancelled 90 days later.
- `rev`: 500.00 yuan (exact yuan); paid in full 02-12, the payment reversed 02-13, warned,
  suspended with the others, and paid in full at 07:59:55 on the 28th, before its 停机通知
  may leave at 08:00.
- `mid` (mid tier): two ADC products, 30.00 and 500.00 yuan, a deposit of 100.00; warnings 1
  and 2, the deduction of 03-15 (30.00 + 70.00 from the deposit), then the second product
  alone suspension-warned (03-25) and suspended on March 31st.
- `high` (high tier): one ADC product with a 190-character name (an emoji in it): warnings 1,
  2 and 3 (04-10), suspension-warned 04-25, suspended 04-30.
- `exe` (high tier, red-listed before 04-10): warning 3 without its threat, no suspension
  warning, never suspended.
- `hold`: an ADC product (123.45) and a MAS product (50.00) billed for March by a bill run at
  07:59:45 on April 1st (still March 31st in UTC): both bill notices held by the quiet hours
  until 08:00; the customer pays 133.45 at 07:59:50 (the ADC product in full, 10.00 of the
  MAS one), before they may leave.

Year: `test_year + 37`, when that is a year no bill run, charge or decision used yet and at
most 2999. When the cap bites (a long-lived stack), not the pattern of test_qa_pass34's
`qa_year` (the year above the newest decision): a bill run there would move the suite's
`test_year` (the year after the newest bill run) to 3000, past the last bill month balance
events carry, and every later session's bill runs would be refused until the stack's reset.
Instead the newest year below the newest bill run that nothing used: whole-base sweeps of later
years (other sessions) can still touch these products while the module runs, as in any year."""

import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

LEFT = ("submitted", "delivered")  # accepted by the SMSC
WAITING = ("held", "pending", "sending")


# --- the texts, by hand from seed 000 and docs/notifier.md ------------------------------------

HELLO = "尊敬的中国移动客户,您好!您的集团产品"


def product_part(p: dict[str, str]) -> str:
    return f"{HELLO}{p['name']}(产品编号:{p['cpno']})"


def bill_notice(p: dict[str, str], yuan: str, mmdd: str) -> str:  # seed
    return (f"{product_part(p)}目前有{yuan}元话费未缴清,请于{mmdd}前及时缴费以免影响您的集团产品"
            "服务。谢谢。")


def warning_1(p: dict[str, str], yuan: str, mmdd: str) -> str:  # ours
    return f"{product_part(p)}已欠费{yuan}元,请于{mmdd}前及时缴费以免影响您的集团产品服务。谢谢。"


def warning_2(p: dict[str, str], yuan: str, mmdd: str) -> str:  # ours
    return (f"{product_part(p)}仍有{yuan}元欠费未缴清,此为第二次欠费提醒,请于{mmdd}前及时缴费以免"
            "影响您的集团产品服务。谢谢。")


def warning_3(p: dict[str, str], yuan: str, mmdd: str) -> str:  # ours
    return (f"{product_part(p)}仍有{yuan}元欠费未缴清,此为第三次欠费提醒,请于{mmdd}前及时缴费,"
            "逾期将停用您的集团产品服务。谢谢。")


def warning_3_exempt(p: dict[str, str], yuan: str, mmdd: str) -> str:  # ours
    return (f"{product_part(p)}仍有{yuan}元欠费未缴清,此为第三次欠费提醒,请于{mmdd}前及时缴费。"
            "谢谢。")


def suspension_warning(p: dict[str, str], yuan: str, ymd: str) -> str:  # seed
    return (f"{product_part(p)}尚有{yuan}元话费未缴清,请及时缴费。如在{ymd}前仍未缴清费用,"
            "将停用您的集团产品服务。")


def notice_a(p: dict[str, str], yuan: str, ymd: str) -> str:  # seed, 停机通知 A
    return (f"{product_part(p)}截至{ymd}尚有{yuan}元欠费未缴纳,现已正式停用,请安排时间缴清费用以"
            "续用您的集团产品。如有其他事宜可咨询您的客户经理或10086,谢谢!")


def notice_b(c: dict[str, Any], p: dict[str, str], yuan: str) -> str:  # seed, 停机通知 B
    return (f"{c['manager_name']},您好!您看管集团{c['name']}的集团产品{p['name']}(产品编号:"
            f"{p['cpno']})尚有{yuan}元欠费,现已被停用该集团产品服务,请及时通知该集团产品联系人缴清"
            "欠费。")


def notice_b_total(c: dict[str, Any], p: dict[str, str], yuan: str, total: str) -> str:
    return (f"{c['manager_name']},您好!您看管集团{c['name']}的集团产品{p['name']}(产品编号:"
            f"{p['cpno']})尚有{yuan}元欠费,现已被停用该集团产品服务(该账户合计欠费{total}元),"
            "请及时通知该集团产品联系人缴清欠费。")


def restore_notice(p: dict[str, str]) -> str:  # seed
    return f"{product_part(p)}已可正常使用,如有疑问可咨询您的客户经理或10086,谢谢!"


def deduction_notice(p: dict[str, str], yuan: str, ymd: str) -> str:  # ours
    return (f"{product_part(p)}的欠费已根据约定于{ymd}从您的预存款中划扣{yuan}元缴纳。"
            "如有疑问可咨询您的客户经理或10086,谢谢!")


def pre_cancel_notice(p: dict[str, str], yuan: str, ymd: str) -> str:  # ours
    return (f"{product_part(p)}因欠费{yuan}元停用已超过保号期,将于{ymd}进行预拆机处理,"
            "请尽快缴清欠费。如有疑问可咨询您的客户经理或10086,谢谢!")


def pre_cancel_manager(c: dict[str, Any], p: dict[str, str], yuan: str, ymd: str) -> str:
    return (f"{c['manager_name']},您好!您看管集团{c['name']}的集团产品{p['name']}(产品编号:"
            f"{p['cpno']})尚有{yuan}元欠费,停用已超过保号期,将于{ymd}进行预拆机处理,请及时通知该集团"
            "产品联系人缴清欠费。")


def payment_reversed(p: dict[str, str], yuan: str, mmdd: str) -> str:  # ours
    return (f"{product_part(p)}此前的缴费已被冲正(退票),目前尚有{yuan}元话费未缴清,请于{mmdd}前及时"
            "缴费以免影响您的集团产品服务。如有疑问可咨询您的客户经理或10086,谢谢!")


def segments_of(sms: str) -> int:
    """UCS-2: 70 units one SMS, else 67-unit segments; a surrogate pair is never cut."""
    widths = [2 if ord(ch) > 0xFFFF else 1 for ch in sms]
    if sum(widths) <= 70:
        return 1
    count, used = 1, 0
    for w in widths:
        if used + w > 67:
            count, used = count + 1, 0
        used += w
    return count


# --- the year and the story -------------------------------------------------------------------

@pytest.fixture(scope="module")
async def qa_year(test_year: int, db: AsyncEngine) -> int:
    """See the module's docstring."""
    async with db.connect() as conn:
        used = {int(y) for (y,) in await conn.execute(text(
            "SELECT extract(year FROM bill_month)::int FROM billing.bill_runs "
            "UNION SELECT extract(year FROM bill_month)::int FROM billing.charges "
            "UNION SELECT extract(year FROM as_of AT TIME ZONE 'Asia/Shanghai')::int "
            "FROM credit.decisions"))}
        newest_bill = await conn.scalar(text(
            "SELECT max(extract(year FROM bill_month))::int FROM billing.bill_runs"))
    if test_year + 37 <= 2999 and test_year + 37 not in used:
        return test_year + 37
    for y in range(min(int(newest_bill or 2999), 2999) - 1, 2200, -1):
        if y not in used:
            return y
    raise AssertionError("no business year left unused: the test stack needs its reset")


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def credit_of(credit: httpx.AsyncClient, product_id: str) -> dict[str, Any] | None:
    r = await credit.get(f"/v1/products/{product_id}/credit")
    return r.json() if r.status_code == 200 else None


async def messages(notifier: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await ok(
        await notifier.get("/v1/messages", params={"product_id": product_id}), 200)
    return found


async def received(notifier: httpx.AsyncClient, phone: str) -> list[str]:
    """The texts the simulated SMSC received for `phone`, oldest first."""
    got = await ok(await notifier.get("/v1/smsc/messages", params={"recipient": phone}), 200)
    return [m["text"] for m in got]


class Story:
    def __init__(self, clients: dict[str, httpx.AsyncClient], admin: httpx.AsyncClient,
                 y: int) -> None:
        self.billing, self.credit = clients["billing-events"], clients["credit-control"]
        self.notifier, self.admin = clients["notifier"], admin
        self.y, self.uid = y, uuid.uuid4().hex[:8]
        self.base = int(self.uid, 16) % 10**7
        self.customers: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, str]] = {}
        self.started = time.monotonic()
        self.night_year = 0
        self.night_states: dict[str, str] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        # February's last day (28th, or 29th in a leap year); 90 days after it (低 tier 保号期)
        feb_end = date(y, 3, 1) - timedelta(days=1)
        self.feb_end = f"{feb_end:%m-%d}"
        self.kept_until = f"{feb_end + timedelta(days=90):%m-%d}"
        self.sms: dict[str, list[str]] = {}

    def phone(self, prefix: str, i: int) -> str:
        return f"{prefix}{self.base:07d}{i:02d}"

    async def customer(self, key: str, i: int, name: str, tier: str, manager: str,
                       contacts: int = 1) -> dict[str, Any]:
        c = {"key": key, "customer_id": f"G37{self.uid}{key}", "account_id": f"A37{self.uid}{key}",
             "name": name, "manager_name": manager, "manager": self.phone("18", i),
             "contacts": [self.phone("15", 10 * j + i) for j in range(contacts)]}
        await ok(await self.billing.post("/v1/customers", json={
            "customer_id": c["customer_id"], "name": name, "tier": tier,
            "account_manager": {"name": manager, "phone": c["manager"]},
            "contacts": [{"name": f"联系人{j}", "phone": ph}
                         for j, ph in enumerate(c["contacts"])]}))
        await ok(await self.billing.post("/v1/accounts", json={
            "account_id": c["account_id"], "customer_id": c["customer_id"]}))
        self.customers[key] = c
        return c

    async def product(self, c: dict[str, Any], key: str, name: str, fen: int, month: str,
                      family: str = "ADC", year: int | None = None) -> dict[str, str]:
        p = {"product_id": f"P37{self.uid}{key}", "cpno": f"CP37{self.uid}{key}", "name": name,
             "customer": c["key"]}
        body = {"product_id": p["product_id"], "cpno": p["cpno"], "name": name,
                "account_id": c["account_id"], "family": family}
        charge = {"charge_id": f"C37{self.uid}{key}", "account_id": c["account_id"],
                  "product_id": p["product_id"], "bill_month": f"{year or self.y}-{month}",
                  "amount_fen": fen}
        if family == "MAS":
            body["vendor"] = "huawei"
        if year is not None:  # a past year: opened and charged then, not now
            body["as_of"] = f"{year}-{month}-02T10:00:00+08:00"
            charge["as_of"] = f"{year}-{month}-20T10:00:00+08:00"
        await ok(await self.billing.post("/v1/products", json=body))
        await ok(await self.billing.post("/v1/charges", json=charge))
        self.products[key] = p
        return p

    def at(self, mmdd: str, hhmmss: str = "10:00:00") -> str:
        return f"{self.y}-{mmdd}T{hhmmss}+08:00"

    async def bill_run(self, month: str, at: str, year: int | None = None) -> None:
        await ok(await self.billing.post("/v1/bill-runs", json={
            "bill_run_id": f"BR37{self.uid}{year or self.y}{month}",
            "bill_month": f"{year or self.y}-{month}", "as_of": at}))

    async def pay(self, key: str, fen: int, at: str, tag: str = "") -> str:
        payment_id = f"PAY37{self.uid}{key}{tag}"
        await ok(await self.billing.post("/v1/payments", json={
            "payment_id": payment_id, "account_id": self.customers[key]["account_id"],
            "amount_fen": fen, "paid_at": at}))
        return payment_id

    async def sweep(self, mmdd: str, hhmmss: str = "10:00:00", year: int | None = None) -> None:
        sweep_id = f"S37{self.uid}{year or self.y}{mmdd}"
        body = await ok(await self.credit.post("/v1/sweeps", json={
            "sweep_id": sweep_id, "as_of": f"{year or self.y}-{mmdd}T{hhmmss}+08:00"}))
        if body.get("held"):  # the mass-suspension guard (a shared stack may trip it)
            await ok(await self.credit.post(f"/v1/sweeps/{sweep_id}/confirm", json={}), 200)

    async def view(self, key: str, accept: Any, what: str, timeout: float = 30) -> Any:
        return await eventually(partial(credit_of, self.credit, self.products[key]["product_id"]),
                                lambda c: c is not None and accept(c), what=what,
                                timeout=timeout)

    async def owes(self, key: str, fen: int) -> None:
        await self.view(key, lambda c: c["facts"]["product_amount_due_fen"] == fen,
                        f"{key} owes {fen} fen at credit-control")

    async def state(self, key: str, *states: str, timeout: float = 30) -> None:
        await self.view(key, lambda c: c["state"] in states, f"{key} {states}", timeout)

    async def heard(self, *keys: str) -> None:
        """The suspension warning of each product delivered, as credit-control heard it."""
        for key in keys:
            await self.view(key, lambda c: c["ladder"]["notice"]["status"] == "delivered",
                            f"{key}'s suspension warning delivered")

    async def settled(self) -> None:
        """Nothing of this story waits to leave any more."""
        for p in self.products.values():
            await eventually(partial(messages, self.notifier, p["product_id"]),
                             lambda ms: all(m["status"] not in WAITING for m in ms),
                             what=f"{p['product_id']}'s messages settled", timeout=30)

    def log(self, what: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {what}", flush=True)


LONG_NAME = "集团智慧办公📱" + "云" * 160 + "（旗舰版）" + "尾" * 18


@pytest.fixture(scope="module")
async def night_year(db: AsyncEngine) -> int:
    """A leap year before the wall clock's that nothing used (see `night` in the story)."""
    async with db.connect() as conn:
        used = {int(y) for (y,) in await conn.execute(text(
            "SELECT extract(year FROM bill_month)::int FROM billing.bill_runs "
            "UNION SELECT extract(year FROM bill_month)::int FROM billing.charges "
            "UNION SELECT extract(year FROM as_of AT TIME ZONE 'Asia/Shanghai')::int "
            "FROM credit.decisions"))}
    for y in range(datetime.now(UTC).year - 1, 2000, -1):
        if y % 4 == 0 and y % 100 != 0 and y not in used:
            return y
    raise AssertionError("no leap year before the clock left unused")


async def night_story(s: Story, y: int) -> None:
    """A low-tier product billed for January of a past leap year, suspension-warned by the
    sweep of February 25th at 23:00 (in the quiet hours); the day-time sweeps of February 29th
    and March 1st. Past, so the held warning leaves at once (its opening has passed on the
    wall clock) and reaches the customer at 08:00 on the 26th in business time
    (docs/notifier.md "Quiet hours", "Notice outcomes"). Run before any sweep of the main
    year (they would act on it), and paid in full after (they leave it alone then)."""
    night = await s.customer("night", 7, f"夜班集团{s.uid}", "low", "吴经理")
    await s.product(night, "nt", "集团手机报", 8_800, "01", year=y)
    await s.bill_run("01", f"{y}-02-01T09:00:00+08:00", year=y)
    await s.owes("nt", 8_800)
    await s.sweep("02-25", "23:00:00", year=y)
    await s.heard("nt")
    for day in ("02-29", "03-01"):
        await s.sweep(day, year=y)
        s.night_states[day] = (await s.view("nt", lambda c: c["state"] not in (
            "suspend_requested",), "nt settled"))["state"]
    await s.pay("night", 8_800, f"{y}-03-02T10:00:00+08:00")
    await s.state("nt", "normal")


@pytest.fixture(scope="module")
async def story(clients: dict[str, httpx.AsyncClient],
                role_clients: dict[str, dict[str, httpx.AsyncClient]], qa_year: int,
                night_year: int) -> Story:
    s = Story(clients, role_clients["credit-admin"]["credit-control"], qa_year)
    s.night_year = night_year
    two = await s.customer("two", 1, f"星河\"科技\"{{JTNAME}}%s有限公司{s.uid}", "low",
                           "张\"KHJLNAME\"经理", contacts=2)
    await s.product(two, "ad", "\"云\"办公%s{CPNO}XX（专线）：{0}", 100_000_000, "01")
    await s.product(two, "ms", "企业信息机 CRM-MAS  华为，100%", 1, "01", family="MAS")
    rev = await s.customer("rev", 2, f"退票集团{s.uid}", "low", "王经理")
    await s.product(rev, "rv", "集团手机报", 50_000, "01")
    mid = await s.customer("mid", 3, f"中信用集团{s.uid}", "mid", "赵经理")
    await s.product(mid, "m1", "集团V网", 3_000, "01")
    await s.product(mid, "m2", "企信通", 50_000, "01")
    high = await s.customer("high", 4, f"高信用集团{s.uid}", "high", "钱经理")
    await s.product(high, "hi", LONG_NAME, 12_345, "01")
    exe = await s.customer("exe", 5, f"红名单集团{s.uid}", "high", "孙经理")
    await s.product(exe, "ex", "移动办公", 20_000, "01")
    hold = await s.customer("hold", 6, f"清晨集团{s.uid}", "low", "周经理")
    await s.product(hold, "h1", "集团手机报", 12_345, "03")
    await s.product(hold, "h2", "企业信息机", 5_000, "03", family="MAS")
    pair = await s.customer("pair", 8, f"双产品集团{s.uid}", "low", "郑经理")
    await s.product(pair, "pa", "集团V网", 10_000, "01")
    await s.product(pair, "pb", "企信通", 20_000, "01")
    await s.bill_run("01", s.at("02-01", "09:00:00"))
    await ok(await s.billing.post("/v1/deposits", json={
        "deposit_id": f"DEP37{s.uid}", "account_id": mid["account_id"], "amount_fen": 10_000,
        "received_at": s.at("02-01", "10:00:00")}))
    # March, billed at 07:59:45 on April 1st: the bill notices wait for 08:00 (15 s of wall
    # time); the customer pays before. Nothing of February or March sweeps touches it (its
    # last change is after their days).
    await s.bill_run("03", s.at("04-01", "07:59:45"))
    await s.owes("h2", 5_000)
    await s.pay("hold", 13_345, s.at("04-01", "07:59:50"))
    s.log("billed; the hold story paid")
    await night_story(s, night_year)  # while the hold story's notices wait for 08:00
    s.log("night story")

    await s.owes("m2", 50_000)
    await s.view("m2", lambda c: c["state"] == "warned", "mid billed")
    await s.sweep("02-10")
    await s.pay("rev", 50_000, s.at("02-12"), "full")
    await s.state("rv", "normal")
    await ok(await s.billing.post("/v1/reversals", json={
        "reversal_id": f"REV37{s.uid}", "payment_id": f"PAY37{s.uid}revfull",
        "reason": "银行退票", "reversed_at": s.at("02-13")}))
    await s.state("rv", "warned")
    await s.sweep("02-25")
    await s.heard("ad", "ms", "rv", "pa", "pb")
    s.log("warned")
    # The month end, at 07:59:50 in Shanghai (the 27th in UTC): the customers' 停机通知 wait
    # for 08:00; rev's customer pays in full before.
    await s.sweep(s.feb_end, "07:59:50")
    await s.state("rv", "suspended")
    await s.pay("rev", 50_000, s.at(s.feb_end, "07:59:55"), "again")
    await s.state("pa", "suspended")
    await s.pay("pair", 10_000, s.at(s.feb_end, "07:59:56"))  # pa's own amount in full
    await s.state("rv", "normal")
    await s.owes("pa", 0)
    s.log("month end")

    await s.sweep("03-10")
    await s.sweep("03-15")
    await s.owes("m2", 43_000)  # the deduction collected
    await s.sweep("03-25")
    await s.heard("m2")
    await s.sweep("03-31")
    await ok(await s.admin.post("/v1/exemptions", json={
        "exemption_id": f"EX37{s.uid}", "customer_id": exe["customer_id"],
        "kind": "red_list", "reason": "重点保障客户", "approver": "li.si"}))
    await s.view("ex", lambda c: bool(c["exemptions"]), "exe red-listed")
    s.log("March")
    # The hold story's notices leave at 08:00 (wall: 15 s after the bill run) before its
    # products are swept again.
    for key in ("h1", "h2"):
        await eventually(partial(messages, s.notifier, s.products[key]["product_id"]),
                         lambda ms: bool(ms) and all(m["status"] not in WAITING for m in ms),
                         what=f"{key}'s bill notice settled", timeout=40)
    s.log("hold released")
    await s.sweep("04-10")
    await s.sweep("04-25")
    await s.heard("hi", "h2")
    await s.sweep("04-30")
    for key in ("ad", "ms"):
        await s.state(key, "suspended", timeout=60)
    await s.sweep(s.kept_until)
    s.log("swept")
    await s.settled()
    # What the tests read, once: every product's log and what the SMSC holds for each number.
    for key, p in s.products.items():
        s.logs[key] = await messages(s.notifier, p["product_id"])
    for m in (m for found in s.logs.values() for m in found):
        if m["recipient"] not in s.sms:
            s.sms[m["recipient"]] = await received(s.notifier, m["recipient"])
    s.log("settled")
    return s




# --- reading what left --------------------------------------------------------------------------

async def log_of(s: Story, key: str, template: str | None = None) -> list[dict[str, Any]]:
    """The product's messages (of `template`), oldest first."""
    return [m for m in s.logs[key] if template is None or m["template"] == template]


async def left(s: Story, key: str, template: str) -> dict[str, list[str]]:
    """recipient → the texts of the product's `template` messages the SMSC accepted; each one
    also exactly what the simulated SMSC holds for that number, and its segments counted by
    hand. A message of the template that did not leave fails here, with its reason."""
    by: dict[str, list[str]] = {}
    for m in await log_of(s, key, template):
        assert m["status"] in LEFT, m
        assert m["segments"] == segments_of(m["text"]), m
        assert m["text"] in s.sms[m["recipient"]], m
        by.setdefault(m["recipient"], []).append(m["text"])
    return by


def business_day(value: str) -> str:
    """YYYY-MM-DD of an instant in Asia/Shanghai (+08:00, no daylight saving)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment + timedelta(hours=8)).astimezone(UTC).date().isoformat()


async def decided(s: Story, key: str, decision: str) -> list[str]:
    """The business days of the product's decisions of that kind, in order."""
    view = await credit_of(s.credit, s.products[key]["product_id"])
    assert view is not None
    return [business_day(d["as_of"]) for d in view["decisions"] if d["decision"] == decision]


def contacts(s: Story, key: str) -> list[str]:
    return list(s.customers[s.products[key]["customer"]]["contacts"])


def manager(s: Story, key: str) -> str:
    return str(s.customers[s.products[key]["customer"]]["manager"])


# --- the tests ------------------------------------------------------------------------------------

async def test_bill_notices_quote_each_products_own_amount_to_every_contact(story: Story) -> None:
    """One account, an ADC product owing 1,000,000.00 yuan and a MAS product owing 0.01, two
    group contacts; other accounts owing exact yuan and cents. Each product's 话费通知 goes to
    each contact once (never to the account manager), in the seed's words with the names as
    they were given (quotes, %s, {}, the seed's own tokens, full-width characters and a double
    space untouched), the product's own amount to the fen, no thousands separator (the seed's
    XX元), pay by the 25th of the bill run's month."""
    s = story
    for key, yuan in (("ad", "1000000.00"), ("ms", "0.01"), ("rv", "500.00"), ("m1", "30.00"),
                      ("m2", "500.00"), ("ex", "200.00")):
        p = s.products[key]
        want = bill_notice(p, yuan, "02月25日")
        assert await left(s, key, "bill_notice") == {c: [want] for c in contacts(s, key)}, key
        assert manager(s, key) not in {m["recipient"] for m in await log_of(s, key)
                                       if m["role"] == "group_contact"}


async def test_a_held_bill_notice_partly_paid_leaves_quoting_what_is_still_owed(
    story: Story,
) -> None:
    """March billed at 07:59:45 on April 1st (still March 31st in UTC), an ADC product 123.45
    and a MAS product 50.00 yuan; both 话费通知 held for 08:00. At 07:59:50 the customer pays
    133.45: billing pays the ADC product in full and 10.00 of the MAS one (oldest month, then
    product id). The ADC product's notice never leaves; the MAS product's leaves at the
    opening quoting the 40.00 still owed, pay by April 25th (the business day of the bill run
    is April 1st in Shanghai, not March 31st: a March date would be 03月31日)."""
    s = story
    [paid] = await log_of(s, "h1", "bill_notice")
    assert paid["status"] == "cancelled", paid
    assert paid["submitted_at"] is None, paid
    assert paid["status_reason"].startswith("arrears cleared since the decision"), paid
    [phone] = contacts(s, "h2")
    want = bill_notice(s.products["h2"], "40.00", "04月25日")
    assert await left(s, "h2", "bill_notice") == {phone: [want]}
    [owed] = await log_of(s, "h2", "bill_notice")
    assert owed["revised_at"] is not None and owed["status_reason"].startswith("quiet hours"), owed
    # nothing else about March's bill reached the phone: no 123.45, no 50.00 yuan
    sms = s.sms[phone]
    assert not [t for t in sms if "123.45元" in t or "50.00元" in t], sms
    # the product paid in full: nothing more, ever (never warned, suspended or threatened)
    assert [m["template"] for m in await log_of(s, "h1")] == ["bill_notice"]


async def test_warnings_name_the_day_of_the_tiers_suspension(story: Story) -> None:
    """欠费预警 (warning 1, day 10 of arrears month 1) and 二次预警 (mid and high tiers, month
    2) quote the product's own amount and ask to pay by the day the tier's suspension falls on:
    low tier February 28th, mid March 31st, high April 30th (docs/rules.md); a partly paid
    product its own remaining 40.00."""
    s = story
    feb = f"02月{s.feb_end[3:]}日"
    for key, yuan, by in (("ad", "1000000.00", feb), ("ms", "0.01", feb),
                          ("rv", "500.00", feb), ("m1", "30.00", "03月31日"),
                          ("m2", "500.00", "03月31日"), ("hi", "123.45", "04月30日"),
                          ("ex", "200.00", "04月30日"), ("h2", "40.00", "04月30日")):
        want = warning_1(s.products[key], yuan, by)
        assert await left(s, key, "warning_1") == {c: [want] for c in contacts(s, key)}, key
    for key, yuan, by in (("m1", "30.00", "03月31日"), ("m2", "500.00", "03月31日"),
                          ("hi", "123.45", "04月30日"), ("ex", "200.00", "04月30日")):
        want = warning_2(s.products[key], yuan, by)
        assert await left(s, key, "warning_2") == {c: [want] for c in contacts(s, key)}, key
    for key in ("ad", "ms", "rv", "h2"):  # low tier: one warning
        assert await log_of(s, key, "warning_2") == [], key


async def test_a_reversed_payment_says_why_the_product_owes_again(story: Story) -> None:
    """500.00 yuan paid in full on February 12th (cleared), the payment bounced on the 13th:
    the customer is told why it owes again, the product's 500.00 yuan, pay by the 28th (the
    date a suspension warning decided that day names, docs/rules.md)."""
    s = story
    want = payment_reversed(s.products["rv"], "500.00", f"02月{s.feb_end[3:]}日")
    assert await left(s, "rv", "payment_reversed_notice") == {
        c: [want] for c in contacts(s, "rv")}


async def test_each_suspension_warning_names_the_day_the_sweep_suspends(story: Story) -> None:
    """停机预警 in the seed's words with the product's own amount, and its date is the day
    the product was really suspended: February 28th (low tier, a month with 28 days), March
    31st (mid), April 30th (high, and a low-tier product billed for March)."""
    s = story
    feb = s.feb_end
    for key, yuan, on in (("ad", "1000000.00", feb), ("ms", "0.01", feb),
                          ("rv", "500.00", feb), ("m2", "430.00", "03-31"),
                          ("hi", "123.45", "04-30"), ("h2", "40.00", "04-30")):
        ymd = f"{s.y}年{on[:2]}月{on[3:]}日"
        want = suspension_warning(s.products[key], yuan, ymd)
        assert await left(s, key, "suspension_warning") == {
            c: [want] for c in contacts(s, key)}, key
        assert await decided(s, key, "suspend") == [f"{s.y}-{on}"], key


async def test_month_end_suspension_notices_go_to_the_contacts_and_the_manager(
    story: Story,
) -> None:
    """停机通知 A to every group contact, 截至 the business day of the suspension (the sweep ran
    at 07:59:50 on February 28th in Shanghai, the 27th in UTC), held until 08:00 and then
    sent; 停机通知 B to the account manager only, at once: with the account's total when the
    account owes more than the product (1,000,000.01), the seed's B when it does not (the
    sibling paid by the deduction owes nothing)."""
    s = story
    two = s.customers["two"]
    for key, yuan in (("ad", "1000000.00"), ("ms", "0.01")):
        p = s.products[key]
        want_a = notice_a(p, yuan, f"{s.y}年02月{s.feb_end[3:]}日")
        assert await left(s, key, "suspension_notice_contact") == {
            c: [want_a] for c in contacts(s, key)}, key
        assert await left(s, key, "suspension_notice_manager_account") == {
            two["manager"]: [notice_b_total(two, p, yuan, "1000000.01")]}, key
        assert await log_of(s, key, "suspension_notice_manager") == [], key
    for key, yuan, on in (("m2", "430.00", "03月31日"), ("h2", "40.00", "04月30日"),
                          ("hi", "123.45", "04月30日")):
        c, p = s.customers[s.products[key]["customer"]], s.products[key]
        assert await left(s, key, "suspension_notice_contact") == {
            ph: [notice_a(p, yuan, f"{s.y}年{on}")] for ph in c["contacts"]}, key
        assert await left(s, key, "suspension_notice_manager") == {
            c["manager"]: [notice_b(c, p, yuan)]}, key


async def test_a_product_restored_before_the_opening_gets_the_restore_notice_only(
    story: Story,
) -> None:
    """Suspended at 07:59:50 on February 28th, paid in full at 07:59:55: its 停机通知 A, held
    for 08:00, is cancelled (it would say 现已正式停用 of a product that works), and the 开机通知
    leaves in the seed's words. The manager's B had left at once (true then)."""
    s = story
    [a] = await log_of(s, "rv", "suspension_notice_contact")
    assert (a["status"], a["status_reason"], a["submitted_at"]) == (
        "cancelled", "restored since the decision", None), a
    assert await left(s, "rv", "restore_notice") == {
        c: [restore_notice(s.products["rv"])] for c in contacts(s, "rv")}
    sms = s.sms[contacts(s, "rv")[0]]
    assert not [t for t in sms if "现已正式停用" in t], sms


async def test_the_deduction_notice_quotes_what_the_deposit_paid_of_each_product(
    story: Story,
) -> None:
    """Mid tier, a deposit of 100.00 yuan, products owing 30.00 and 500.00: the deduction of
    March 15th collects 30.00 for the first and 70.00 for the second; each 划扣通知 quotes its
    own part and the business day of the collection."""
    s = story
    for key, yuan in (("m1", "30.00"), ("m2", "70.00")):
        want = deduction_notice(s.products[key], yuan, f"{s.y}年03月15日")
        assert await left(s, key, "deduction_notice") == {
            c: [want] for c in contacts(s, key)}, key


async def test_a_product_the_deduction_cleared_is_not_threatened_its_sibling_is(
    story: Story,
) -> None:
    """After the deduction the first product owes nothing of its own: no 停机预警, no 停机通知
    for it (the account still owes for the second). The second is warned and suspended
    quoting its own 430.00 yuan (test above), never the 500.00 it was billed."""
    s = story
    templates = [m["template"] for m in await log_of(s, "m1")]
    assert templates == ["bill_notice", "warning_1", "warning_2", "deduction_notice"]
    view = await credit_of(s.credit, s.products["m1"]["product_id"])
    assert view is not None and view["state"] == "normal", view
    after = [m["text"] for m in await log_of(s, "m2")
             if m["template"] not in ("bill_notice", "warning_1", "warning_2",
                                      "deduction_notice")]
    assert after and all("430.00元" in t and "500.00元" not in t for t in after), after


async def test_the_third_warning_threatens_only_where_the_suspension_follows(
    story: Story,
) -> None:
    """High tier: 三次预警 on April 10th says 逾期将停用 with April 30th, and the product is
    suspension-warned on the 25th and suspended on the 30th. Red-listed before the 10th: the
    same warning without the threat, no 停机预警, never suspended."""
    s = story
    want = warning_3(s.products["hi"], "123.45", "04月30日")
    assert await left(s, "hi", "warning_3") == {c: [want] for c in contacts(s, "hi")}
    assert await decided(s, "hi", "suspend") == [f"{s.y}-04-30"]
    want = warning_3_exempt(s.products["ex"], "200.00", "04月30日")
    assert await left(s, "ex", "warning_3_exempt") == {c: [want] for c in contacts(s, "ex")}
    threats = [m for m in await log_of(s, "ex") if "停用" in m["text"]]
    assert threats == [], threats
    assert await decided(s, "ex", "suspend") == []
    assert await decided(s, "ex", "suspension_warning") == []


async def test_a_very_long_name_leaves_whole_in_its_segments(story: Story) -> None:
    """A 190-character product name with an emoji (two UTF-16 units): every message about it
    carries the name whole, five segments (UCS-2, 67 units each, counted here by hand), and
    the SMSC got exactly that text."""
    s = story
    found = [m for m in await log_of(s, "hi") if m["status"] in LEFT]
    assert {m["template"] for m in found} >= {"bill_notice", "warning_3", "suspension_warning",
                                               "suspension_notice_contact"}
    for m in found:
        assert LONG_NAME in m["text"], m
        assert m["segments"] == segments_of(m["text"]) == 5, m
        assert m["text"] in s.sms[m["recipient"]], m


async def test_pre_cancellation_notices_quote_the_products_own_amount(story: Story) -> None:
    """Suspended on February 28th, 90 days kept (low tier, seed 004): pre-cancelled by the
    sweep of May 29th, each product's notice to its contacts and the manager's copy with its
    own amount and that day."""
    s = story
    two = s.customers["two"]
    for key, yuan in (("ad", "1000000.00"), ("ms", "0.01")):
        p = s.products[key]
        ymd = f"{s.y}年{s.kept_until[:2]}月{s.kept_until[3:]}日"
        assert await left(s, key, "pre_cancel_notice") == {
            c: [pre_cancel_notice(p, yuan, ymd)] for c in contacts(s, key)}, key
        assert await left(s, key, "pre_cancel_notice_manager") == {
            two["manager"]: [pre_cancel_manager(two, p, yuan, ymd)]}, key


ZERO_YUAN = re.compile(r"(?<![0-9.])0\.00元")


async def test_no_message_quotes_nothing_owed(story: Story) -> None:
    """One of two suspended products is paid in full at 07:59:56 on February 28th (its sibling
    still owes 200.00, so the account stays suspended). No SMS about it may quote 0.00 yuan:
    not its held 停机通知 A, not a pre-cancellation 90 days later ("a reminder of 0.00 yuan is
    never sent", docs/notifier.md)."""
    s = story
    bad = []
    for key in s.products:
        bad += [(key, m["template"], m["status"], m["text"]) for m in await log_of(s, key)
                if m["status"] in LEFT and ZERO_YUAN.search(m["text"])]
    assert bad == []
    # Not only unsaid: pa's line is not pre-cancelled when its retention runs out (its
    # sibling's debt keeps it suspended; product_amount.allowed_in_sweep), pb's is.
    assert await decided(s, "pa", "pre_cancel") == []
    assert len(await decided(s, "pb", "pre_cancel")) == 1


async def test_a_warning_held_overnight_names_the_day_the_sweep_suspends(story: Story) -> None:
    """A leap year's February (29 days: 4 days' notice from the 25th). The 停机预警 decided at
    23:00 on the 25th waits for 08:00 on the 26th (the notifier's quiet hours), so its notice
    counts from the 26th (docs/rules.md "Notice before suspension", `ladder.first_sending_day`):
    it says 如在YYYY年03月01日前仍未缴清费用,将停用 (02-26 + 4), not 02-29 (the defect QA pass
    37 found: the 02-29 sweep did not suspend, 03-01's did). The product is suspended on the
    day the SMS names, not later."""
    s, y = story, story.night_year
    [m] = await log_of(s, "nt", "suspension_warning")
    assert m["status"] in LEFT, m
    named = re.search(r"如在(\d{4})年(\d{2})月(\d{2})日前", m["text"])
    assert named is not None, m
    day = f"{named[1]}-{named[2]}-{named[3]}"
    assert day == f"{y}-03-01", m
    assert m["text"] == suspension_warning(s.products["nt"], "88.00", f"{y}年{day[5:7]}月"
                                           f"{day[8:]}日"), m
    assert [d for d in await decided(s, "nt", "suspend") if d.startswith(str(y))] == [day]


async def test_every_template_left_at_least_once(story: Story) -> None:
    """Every template the notifier has reached a phone in this story, in the text the tests
    above compared."""
    s = story
    seen = {m["template"] for key in s.products for m in await log_of(s, key)
            if m["status"] in LEFT}
    r = await s.notifier.get("/v1/templates")
    assert r.status_code == 200, r.text
    names = {t["name"] for t in r.json()}
    assert len(names) == 14, names
    assert names <= seen, names - seen
