"""The dashboard's account page and search box, and the timeline's one row per decision
(issue 20 point 7), over HTTP with a bearer token against the running service: an account
owing 100 yuan since March, warned once on 10 April."""

from datetime import date

import pytest

from .helpers import CreditApi, new_uid
from .test_sweep_one_pass import owing_since_march

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ADMIN = {"Authorization": "Bearer test-token"}
VIEWER = {"Authorization": "Bearer viewer-token"}


async def test_the_account_page_lists_its_products_with_states_amounts_and_timelines(
    api: CreditApi, test_year: int
) -> None:
    lg = await owing_since_march(api, new_uid(), "acct", test_year)
    r = await api.http.get(f"/dashboard/accounts/{lg.account_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    page = r.text
    assert f'data-product="{lg.product_id}"' in page
    assert f'href="/dashboard/products/{lg.product_id}"' in page
    assert "已提醒 warned" in page  # the product's state, Chinese first
    assert "100.00 元" in page and "<td>100.00</td>" in page  # account and product, in yuan
    assert lg.customer.name in page and "王经理" in page

    viewed = await api.http.get(f"/dashboard/accounts/{lg.account_id}", headers=VIEWER)
    assert viewed.status_code == 200
    assert lg.customer.name in viewed.text and "王经理" not in viewed.text  # a person masked
    assert "13900139000" not in viewed.text

    missing = await api.http.get(f"/dashboard/accounts/none{lg.account_id}", headers=ADMIN)
    assert missing.status_code == 404 and "无此账户" in missing.text
    anonymous = await api.http.get(f"/dashboard/accounts/{lg.account_id}",
                                   headers={"Authorization": ""})  # the client's own token off
    assert anonymous.status_code == 401 and 'id="signin-form"' in anonymous.text


async def test_the_search_box_finds_a_product_an_account_or_a_group_by_name(
    api: CreditApi, test_year: int
) -> None:
    lg = await owing_since_march(api, new_uid(), "find", test_year)

    async def search(q: str) -> tuple[int, str, str]:
        r = await api.http.get("/dashboard/search", params={"q": q}, headers=ADMIN,
                               follow_redirects=False)
        return r.status_code, r.headers.get("location", ""), r.text

    assert await search(lg.product_id) == (303, f"/dashboard/products/{lg.product_id}", "")
    assert (await search(lg.account_id))[:2] == (303, f"/dashboard/accounts/{lg.account_id}")
    status, _, page = await search(lg.customer.name[-8:])  # part of the group's name
    assert status == 200 and f'data-account="{lg.account_id}"' in page
    assert lg.customer.name in page and "100.00" in page
    status, _, page = await search("%_nothing-like-this")
    assert status == 200 and "未找到 nothing found" in page and "data-account=" not in page
    empty = await api.http.get("/dashboard/search", params={"q": ""}, headers=ADMIN)
    assert empty.status_code in (400, 422)


async def test_the_timeline_page_shows_each_decision_once(
    api: CreditApi, test_year: int
) -> None:
    """The 10 April warning moved the product (normal → warned, recorded with the decision's
    id): one row for both, not a decision row and a state-change row."""
    lg = await owing_since_march(api, new_uid(), "once", test_year)
    explained = (await api.http.get(f"/v1/products/{lg.product_id}/credit")).json()
    warning = next(d for d in explained["decisions"] if d["decision"] == "warning")
    assert [h["decision_id"] for h in explained["state_history"]].count(
        warning["decision_id"]) == 1  # the fact the page folds in

    page = (await api.http.get(f"/dashboard/products/{lg.product_id}", headers=ADMIN)).text
    assert page.count(f'data-decision="{warning["decision_id"]}"') == 1
    assert '<tr class="state ' not in page
    assert "正常 normal → 已提醒 warned" in page
    assert f"{date(test_year, 4, 10)} 20:00:00 北京时间" in page
    assert " fen" not in page and "_fen" not in page
