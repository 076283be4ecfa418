"""A realistic synthetic customer base for demos and benchmarks. Pure and seeded: the same
(groups, seed) gives the same rows on every machine (random.Random, no global state).

Shape (seed 000 and 004 where they say it, documented guesses where they don't):
- tiers: low 50 %, mid 35 %, high 15 %; star levels follow seed 004's shares within a tier;
- families: ADC 55 %, MAS 20 % (Huawei 50 %, Jiaxun 30 %, Ruoya 20 %), SMS-direct 15 %,
  work-order 10 %; one to three products per group, one account per group;
- monthly charges per product: ADC 30–3,000 yuan, MAS/SMS-direct 200–20,000, work-order
  1,000–50,000, in fen;
- regions: the county branch (区县分公司) is the town in the group's name;
- arrears: a share of the month's receivables is left unpaid, `arrears_rate` of it (seed 000:
  ~1.22 % before the fix, 0.38 % after). Debtors are drawn with weights: work-order
  products ×6 (more than half the arrears before the fix), low tier ×2; each debtor leaves
  part or all of its bill unpaid. Everyone else pays the bill in full in the next month.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

TIERS = (("low", 50), ("mid", 35), ("high", 15))
STARS = {"low": ((None, 40), (0, 20), (1, 25), (2, 15)), "mid": ((2, 40), (3, 60)),
         "high": ((4, 80), (5, 20))}
FAMILIES = (("ADC", 55), ("MAS", 20), ("SMS_DIRECT", 15), ("WORK_ORDER", 10))
VENDORS = (("huawei", 50), ("jiaxun", 30), ("ruoya", 20))
CHARGE_YUAN = {"ADC": (30, 3_000), "MAS": (200, 20_000), "SMS_DIRECT": (200, 20_000),
               "WORK_ORDER": (1_000, 50_000)}
PRODUCT_NAMES = {"ADC": ("集团手机报", "移动办公", "企信通", "飞信企业版", "M-Logo", "PTT"),
                 "MAS": ("CRM-MAS",), "SMS_DIRECT": ("CRM-短信直联",),
                 "WORK_ORDER": ("行业解决方案", "集团专线组合")}
VENDOR_NAMES = {"huawei": "华为", "jiaxun": "嘉讯", "ruoya": "若雅"}
CHANNELS = ("政企客户部", "城区分公司", "县区分公司", "代理商", "集团客户经理")
# Dongguan's towns; a group's town is also its county branch (区县分公司, its region).
CITY = ("莞城", "南城", "东城", "虎门", "长安", "常平", "塘厦", "松山湖")
TRADE = ("物流", "科技", "制造", "教育", "医药", "电子", "贸易", "建设")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"


@dataclass(frozen=True)
class Base:
    customers: list[dict[str, object]]
    accounts: list[dict[str, object]]
    products: list[dict[str, object]]
    charges: list[dict[str, object]]
    payments: list[dict[str, object]]


def _pick(rng: random.Random, weighted: tuple[tuple[object, int], ...]) -> object:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights)[0]


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def generate(groups: int, seed: int, months: list[date], arrears_rate: float = 0.0038,
             prefix: str = "syn") -> Base:
    rng = random.Random(seed)
    base = Base([], [], [], [], [])
    bills: dict[str, dict[date, int]] = {}
    weights: dict[str, int] = {}
    for g in range(groups):
        gid, aid = f"{prefix}-g{g}", f"{prefix}-a{g}"
        tier = str(_pick(rng, TIERS))
        star, town = _pick(rng, STARS[tier]), rng.choice(CITY)
        base.customers.append({
            "customer_id": gid, "tier": tier, "star_level": star,
            "name": f"{town}{rng.choice(TRADE)}{g}有限公司",
            "manager_name": f"{rng.choice(SURNAMES)}经理", "manager_phone": _phone(rng),
            "contacts": f"{rng.choice(SURNAMES)}会计:{_phone(rng)}",
            # The county branch (区县分公司) of the town the group is in: no draw of its own,
            # so the rest of the base is what it was before regions.
            "region": town})
        base.accounts.append({"account_id": aid, "customer_id": gid})
        bills[aid] = {}
        weights[aid] = 2 if tier == "low" else 1
        for p in range(rng.choice((1, 1, 1, 2, 3))):
            family = str(_pick(rng, FAMILIES))
            vendor = str(_pick(rng, VENDORS)) if family == "MAS" else ""
            pid = f"{prefix}-p{g}-{p}"
            name = rng.choice(PRODUCT_NAMES[family])
            base.products.append({
                "product_id": pid, "account_id": aid, "cpno": f"CP{prefix}{g:07d}{p}",
                "name": f"{VENDOR_NAMES[vendor]}{name}" if vendor else name,
                "family": family, "vendor": vendor, "channel": rng.choice(CHANNELS)})
            if family == "WORK_ORDER":
                weights[aid] *= 6
            low, high = CHARGE_YUAN[family]
            for month in months:
                fen = rng.randint(low * 100, high * 100)
                base.charges.append({"charge_id": f"{pid}-{month:%Y%m}", "account_id": aid,
                                     "product_id": pid, "bill_month": f"{month:%Y-%m}",
                                     "amount_fen": fen})
                bills[aid][month] = bills[aid].get(month, 0) + fen
    for month in months:
        base.payments.extend(_payments(rng, bills, weights, month, arrears_rate))
    return base


def _payments(rng: random.Random, bills: dict[str, dict[date, int]], weights: dict[str, int],
              month: date, arrears_rate: float) -> Iterator[dict[str, object]]:
    owed = {a: b[month] for a, b in bills.items() if b.get(month)}
    target = int(sum(owed.values()) * arrears_rate)
    unpaid: dict[str, int] = {}
    order = list(owed)
    while target > 0 and order:
        debtor = rng.choices(order, weights=[weights[a] for a in order])[0]
        order.remove(debtor)
        left = min(owed[debtor] * rng.choice((3, 5, 10)) // 10, target)
        unpaid[debtor] = left
        target -= left
    paid_on = date(month.year + month.month // 12, month.month % 12 + 1, 20)
    for account, fen in owed.items():
        amount = fen - unpaid.get(account, 0)
        if amount > 0:
            yield {"payment_id": f"{account}-pay{month:%Y%m}", "account_id": account,
                   "amount_fen": amount, "paid_at": f"{paid_on.isoformat()}T10:00:00+08:00"}
