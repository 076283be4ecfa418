"""The arrears ladder under changing facts, through the running services (issue 23 points 1–2,
issue 15 point 4): balance events on Kafka as billing publishes them, sweeps through the API,
decisions, dates and deadlines read back from the explain endpoint, and the suspension
warning's SMS text from the notifier.

Each case: the ladder restarts when the oldest owing month is paid; a downgrade past the new
tier's suspension day, an upgrade, a reversal after a restore, an exemption that ends and a
product billed late all get a suspension warning with the notice period before suspension,
and such a suspension is recorded as late."""

from datetime import date
from typing import Any

import httpx
import msgspec
import pytest

from common.contracts.billing import BalanceCause
from common.contracts.snapshots import ProductFamily, Tier
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T, C = ProductFamily, Tier, BalanceCause
Row = tuple[str, int | None, date, str | None]


async def ladder(api: CreditApi, lg: Ledger) -> list[Row]:
    """(decision, warning level, business date, deadline) in the order they were taken."""
    body = await api.credit(lg.product_id)
    return [(d, lv, day, c.get("deadline")) for (d, lv, day), c in zip(
        await api.decisions(lg.product_id), [x["context"] for x in body["decisions"]],
        strict=True)]


async def sweeps(api: CreditApi, key: str, *days: date) -> None:
    for day in days:
        await api.sweep(day, f"{key}-{day.isoformat()}")


async def sms(notifier: httpx.AsyncClient, product_id: str, template: str,
              count: int) -> list[str]:
    async def texts() -> list[str]:
        found: list[dict[str, Any]] = (await notifier.get(
            "/v1/messages", params={"product_id": product_id})).json()
        return [m["text"] for m in found if m["template"] == template]

    got: list[str] = await eventually(texts, lambda t: len(t) >= count, timeout=60,
                                      what=f"{count} {template} SMS for {product_id}")
    return got


async def test_paying_the_oldest_month_restarts_the_ladder(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], test_year: int
) -> None:
    """Mid tier, ADC: March 100 yuan, April 200 yuan. The 05-25 suspension warning names
    05-31; March paid on 05-27: no suspension on 05-31 (that warning announced March's), the
    ladder restarts for April (warning 1 on 05-28, still its month; warning 2 on 06-10), a new
    suspension warning on 06-25 naming 06-30, suspended on 06-30."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "lmid", F.ADC, T.MID)
    m3, m4 = f"{y}-03", f"{y}-04"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 4, 1), 9), [(m3, 10_000)], m3)))
    await sweeps(api, f"lm{uid}", date(y, 4, 10))
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 5, 1), 9),
                                    [(m3, 10_000), (m4, 20_000)], m4)))
    await sweeps(api, f"lm{uid}", date(y, 5, 10), date(y, 5, 25))
    await api.deliver((lg, lg.event(C.PAYMENT, at(date(y, 5, 27), 10), [(m4, 20_000)])))
    assert await api.state(lg.product_id) == "warned"  # the ladder restarted
    await sweeps(api, f"lm{uid}", date(y, 5, 28), date(y, 5, 31), date(y, 6, 10),
                 date(y, 6, 25), date(y, 6, 29), date(y, 6, 30))
    may, june = f"{y}-05-31", f"{y}-06-30"
    assert await ladder(api, lg) == [
        ("bill_notice", None, date(y, 4, 1), f"{y}-04-25"),
        ("warning", 1, date(y, 4, 10), may),
        ("bill_notice", None, date(y, 5, 1), f"{y}-05-25"),
        ("warning", 2, date(y, 5, 10), may),
        ("suspension_warning", None, date(y, 5, 25), may),
        ("warning", 1, date(y, 5, 28), june),
        ("warning", 2, date(y, 6, 10), june),
        ("suspension_warning", None, date(y, 6, 25), june),
        ("suspend", None, date(y, 6, 30), None),
    ]
    history = (await api.credit(lg.product_id))["state_history"]
    assert any(h["state_before"] == "suspension_warned" and h["state_after"] == "warned"
               and h["cause"].startswith(f"ladder restarts: oldest owing month {m3} → {m4}")
               for h in history), history
    texts = await sms(clients["notifier"], lg.product_id, "suspension_warning", 2)
    product = lg.products[0]
    assert (f"尊敬的中国移动客户,您好!您的集团产品{product.name}(产品编号:{product.cpno})"
            f"尚有200.00元话费未缴清,请及时缴费。如在{y}年06月30日前仍未缴清费用,"
            "将停用您的集团产品服务。") in texts, texts


async def test_downgrade_past_the_new_tiers_day_warns_then_suspends_late(
    api: CreditApi, test_year: int
) -> None:
    """High → low on 07-05, after low's suspension day (06-30): a suspension warning that day
    naming 07-11 (July: 25th → 31st, 6 days), nothing on 07-10, suspended on 07-11 as late."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "ldown", F.ADC, T.HIGH)
    m5 = f"{y}-05"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 6, 1), 9), [(m5, 10_000)], m5)))
    await sweeps(api, f"ld{uid}", date(y, 6, 10), date(y, 6, 30))
    lg.customer = msgspec.structs.replace(lg.customer, tier=T.LOW)
    await api.deliver((lg, lg.event(C.MASTER_DATA, at(date(y, 7, 5), 9), [(m5, 10_000)])))
    await sweeps(api, f"ld{uid}", date(y, 7, 5), date(y, 7, 10), date(y, 7, 11))
    assert await ladder(api, lg) == [
        ("bill_notice", None, date(y, 6, 1), f"{y}-06-25"),
        ("warning", 1, date(y, 6, 10), f"{y}-08-31"),
        ("suspension_warning", None, date(y, 7, 5), f"{y}-07-11"),
        ("suspend", None, date(y, 7, 11), None),
    ]
    explained = await api.credit(lg.product_id)
    assert explained["ladder"] == {"month": f"{m5}-01", "warning_level": 1,
                                   "suspension_warned_on": f"{y}-07-05",
                                   "suspension_deadline": f"{y}-07-11"}
    suspend = explained["decisions"][-1]
    assert suspend["reason"].endswith(f"; late: suspension warning of {y}-07-05 named {y}-07-11")
    assert suspend["inputs"]["late"] is True


async def test_upgrade_drops_a_warning_that_no_longer_announces_the_suspension(
    api: CreditApi, test_year: int
) -> None:
    """Low tier, August owing: warning 09-10, suspension warning 09-25 naming 09-30. Upgraded
    to high on 09-28: no suspension on 09-30; warnings 2 and 3, a suspension warning naming
    11-30, suspended on 11-30."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "lup", F.ADC, T.LOW)
    m8 = f"{y}-08"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 9, 1), 9), [(m8, 10_000)], m8)))
    await sweeps(api, f"lu{uid}", date(y, 9, 10), date(y, 9, 25))
    lg.customer = msgspec.structs.replace(lg.customer, tier=T.HIGH)
    await api.deliver((lg, lg.event(C.MASTER_DATA, at(date(y, 9, 28), 9), [(m8, 10_000)])))
    assert await api.state(lg.product_id) == "warned"
    await sweeps(api, f"lu{uid}", date(y, 9, 30), date(y, 10, 10), date(y, 11, 10),
                 date(y, 11, 25), date(y, 11, 30))
    sep, nov = f"{y}-09-30", f"{y}-11-30"
    assert await ladder(api, lg) == [
        ("bill_notice", None, date(y, 9, 1), f"{y}-09-25"),
        ("warning", 1, date(y, 9, 10), sep),
        ("suspension_warning", None, date(y, 9, 25), sep),
        ("warning", 2, date(y, 10, 10), nov),
        ("warning", 3, date(y, 11, 10), nov),
        ("suspension_warning", None, date(y, 11, 25), nov),
        ("suspend", None, date(y, 11, 30), None),
    ]


async def test_a_reversal_after_restore_gives_notice_before_suspending_again(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], test_year: int
) -> None:
    """Low tier, January owing: suspended 02-28, paid and restored 03-01, the payment
    reversed 03-02: payment_reversed (pay by 03-08), the day's sweep a suspension warning
    naming 03-08, nothing on 03-07, suspended on 03-08."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "lrev", F.ADC, T.LOW)
    m1 = f"{y}-01"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 2, 1), 9), [(m1, 10_000)], m1)))
    feb_end = date(y, 3, 1).toordinal() - 1
    await sweeps(api, f"lr{uid}", date(y, 2, 25), date.fromordinal(feb_end))
    await api.deliver((lg, lg.event(C.PAYMENT, at(date(y, 3, 1), 10))))
    await api.deliver((lg, lg.event(C.REVERSAL, at(date(y, 3, 2), 10), [(m1, 10_000)])))
    await sweeps(api, f"lr{uid}", date(y, 3, 2), date(y, 3, 7), date(y, 3, 8))
    got = await ladder(api, lg)
    assert got[3:] == [
        ("restore", None, date(y, 3, 1), None),
        ("payment_reversed", None, date(y, 3, 2), f"{y}-03-08"),
        ("suspension_warning", None, date(y, 3, 2), f"{y}-03-08"),
        ("suspend", None, date(y, 3, 8), None),
    ], got
    texts = await sms(clients["notifier"], lg.product_id, "suspension_warning", 2)
    assert any(f"如在{y}年03月08日前仍未缴清费用" in t for t in texts), texts


async def test_an_exemption_that_ends_gives_notice_before_suspension(
    api: CreditApi, test_year: int
) -> None:
    """Emergency no-suspension until 10-03: reminded, never threatened (no suspension
    warning, `suspension_exempt` in the context), not suspended on 09-30; when it ends, a
    suspension warning naming 10-09, suspended on 10-09."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "lexp", F.ADC, T.LOW)
    # credit-control knows a customer from its balance events (an exemption for a customer
    # no service has heard of is a 404): the product's master_data event comes first.
    await api.deliver((lg, lg.event(C.MASTER_DATA, at(date(y, 8, 20), 9))))
    r = await api.http.post("/v1/exemptions", json={
        "exemption_id": f"EXlexp{uid}", "customer_id": lg.customer.customer_id,
        "kind": "emergency", "reason": "重要客户, 已承诺缴费", "approver": "分管副总",
        "created_by": "集团账务管理员", "until": f"{y}-10-03T00:00:00+08:00"})
    assert r.status_code == 201, r.text
    m8 = f"{y}-08"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 9, 1), 9), [(m8, 10_000)], m8)))
    await sweeps(api, f"le{uid}", date(y, 9, 10), date(y, 9, 25), date(y, 9, 30),
                 date(y, 10, 3), date(y, 10, 9))
    assert await ladder(api, lg) == [
        ("bill_notice", None, date(y, 9, 1), f"{y}-09-25"),
        ("warning", 1, date(y, 9, 10), f"{y}-09-30"),
        ("suspension_warning", None, date(y, 10, 3), f"{y}-10-09"),
        ("suspend", None, date(y, 10, 9), None),
    ]
    contexts = [d["context"] for d in (await api.credit(lg.product_id))["decisions"]]
    assert [c["suspension_exempt"] for c in contexts] == [True, True, False, False]


async def test_a_product_billed_late_is_warned_then_suspended_after_the_notice_period(
    api: CreditApi, test_year: int
) -> None:
    """Low tier: October's bill reaches credit-control on 12-03, after its suspension day
    (11-30): a suspension warning at the 12-03 sweep naming 12-09, suspended on 12-09."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "llate", F.ADC, T.LOW)
    m10 = f"{y}-10"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 12, 3), 9), [(m10, 10_000)], m10)))
    await sweeps(api, f"ll{uid}", date(y, 12, 3), date(y, 12, 8), date(y, 12, 9))
    assert [(d, day, dl) for d, _, day, dl in await ladder(api, lg)] == [
        ("bill_notice", date(y, 12, 3), f"{y}-12-25"),
        ("suspension_warning", date(y, 12, 3), f"{y}-12-09"),
        ("suspend", date(y, 12, 9), None),
    ]
