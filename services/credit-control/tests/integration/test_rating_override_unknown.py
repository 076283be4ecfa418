"""A rating override names its customer by id in the path (docs/rating.md, "Overrides"): a
customer no service has heard of (a typo) is a 404 naming `customer_id`, and nothing is
written: no override, no rating change, no credit profile, no audit entry. A customer that
credit-control knows gets its override as before."""

from typing import Any

import pytest
from sqlalchemy import text

from .helpers import CreditApi, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def _written(api: CreditApi, customer: str, override_id: str) -> dict[str, Any]:
    """Every row an override writes, for this customer or this override id."""
    async with api.db.connect() as conn:
        counts = {}
        for name, sql in (
            ("overrides", "SELECT count(*) FROM credit.rating_overrides "
                          "WHERE customer_id = :c OR override_id = :o"),
            ("changes", "SELECT count(*) FROM credit.rating_changes WHERE customer_id = :c"),
            ("profiles", "SELECT count(*) FROM credit.credit_profiles WHERE customer_id = :c"),
            ("audit", "SELECT count(*) FROM credit.audit_log WHERE entity_id = :c"),
        ):
            counts[name] = await conn.scalar(text(sql), {"c": customer, "o": override_id})
    return counts


async def test_an_override_for_an_unknown_customer_is_404_and_writes_nothing(
    api: CreditApi, test_year: int,
) -> None:
    uid = new_uid()
    customer, override_id = f"Gtypo{uid}", f"OVtypo{uid}"
    body = {"override_id": override_id, "star_level": 3, "reason": "复核",
            "expires_at": f"{test_year}-03-31T00:00:00+08:00"}
    nothing = {"overrides": 0, "changes": 0, "profiles": 0, "audit": 0}

    r = await api.http.post(f"/v1/ratings/{customer}/overrides", json=body)
    assert r.status_code == 404, r.text
    problem = r.json()
    assert problem["field"] == "customer_id" and problem["customer_id"] == customer, problem
    assert customer in problem["message"] and "billing" in problem["message"], problem
    assert await _written(api, customer, override_id) == nothing
    again = await api.http.post(f"/v1/ratings/{customer}/overrides", json=body)  # a retry
    assert again.status_code == 404, again.text
    assert (await api.http.get(f"/v1/ratings/{customer}")).status_code == 404
    assert await _written(api, customer, override_id) == nothing

    # Known to credit-control (an admin's credit profile): the same request is accepted.
    assert (await api.http.put(f"/v1/profiles/{customer}",
                               json={"star_level": 1})).status_code == 200
    done = await api.http.post(f"/v1/ratings/{customer}/overrides", json=body)
    assert done.status_code == 201, done.text
    assert done.json()["customer_id"] == customer and done.json()["star_level"] == 3
    found = await _written(api, customer, override_id)
    assert (found["overrides"], found["changes"], found["profiles"]) == (1, 1, 1)
