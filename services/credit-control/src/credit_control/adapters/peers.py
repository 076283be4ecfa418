"""The other services' figures, read over their HTTP APIs (services never import each other).

billing: receivables and arrears per bill month; notifier: reminder timeliness; gateway:
EMOS cross-month orders and the newest reconciliation (missed suspensions, 漏停).
"""

import asyncio
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from common.errors import ApiError


class PeerUnavailable(ApiError):
    status_code = 502
    code = "peer_unavailable"


# A 36-month arrears report asks billing for 4 × 36 figures: at most this many at a time, so
# one report cannot crowd out everyone else's requests on the peers.
MAX_CONCURRENT_CALLS = 8


@dataclass(frozen=True)
class Peers:
    """One pooled HTTP client for every call (opened with the app, closed by `aclose` at
    shutdown), and a cap on how many calls are in flight at once."""

    billing_url: str
    notifier_url: str
    gateway_url: str
    token: str
    timeout_s: float = 30.0
    max_concurrent: int = MAX_CONCURRENT_CALLS
    _client: httpx.AsyncClient = field(init=False, repr=False)
    _slots: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        client = httpx.AsyncClient(headers={"Authorization": f"Bearer {self.token}"},
                                   timeout=self.timeout_s)
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_slots", asyncio.Semaphore(self.max_concurrent))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def receivables(
        self, first: date, through: date, as_of: date | None, by: str | None = None,
    ) -> dict[str, Any]:
        params: dict[str, str] = {"bill_month": _month(first), "through": _month(through)}
        if as_of is not None:
            params["as_of"] = as_of.isoformat()
        if by is not None:
            params["by"] = by
        found = await self._get("billing-events", self.billing_url, "/v1/receivables", params)
        assert found is not None  # billing answers every closed or open range
        return found

    async def reminder_timeliness(self, bill_month: date) -> dict[str, Any] | None:
        return await self._get("notifier", self.notifier_url, "/v1/kpis/reminder-timeliness",
                               {"bill_month": _month(bill_month)})

    async def emos_cross_month(self, month: date, as_of: date | None) -> dict[str, Any] | None:
        params = {"month": _month(month)}
        if as_of is not None:
            params["as_of"] = f"{as_of.isoformat()}T23:59:59+08:00"
        return await self._get("gateway-adapter", self.gateway_url,
                               "/v1/kpis/emos-cross-month", params)

    async def latest_reconciliation(self) -> dict[str, Any] | None:
        """None when no reconciliation has run yet (the gateway answers 404)."""
        return await self._get("gateway-adapter", self.gateway_url,
                               "/v1/reconciliation/latest", {})

    async def product_messages(self, product_id: str) -> list[dict[str, Any]]:
        """The notifier's log for one product (sent, held, cancelled with its reason...)."""
        found: list[dict[str, Any]] | None = await self._json(
            "notifier", self.notifier_url, "/v1/messages",
            {"product_id": product_id, "limit": "1000"})
        return found or []

    async def product_chain(self, product_id: str) -> dict[str, Any] | None:
        """The gateway-adapter's view of one product's chain (BOSS, EMOS, gateway, and each
        command attempt with the moment it passed each stage); None if the chain never saw
        the product."""
        return await self._get("gateway-adapter", self.gateway_url,
                               f"/v1/products/{quote(product_id, safe='')}/chain", {})

    async def balance_history(self, month: date, warmup_months: int, after: str,
                              limit: int, channel: str | None = None) -> dict[str, Any]:
        """One page of billing's balance history (issue 19, the what-if replay's input)."""
        params = {"month": _month(month), "warmup_months": str(warmup_months),
                  "after": after, "limit": str(limit)}
        if channel is not None:
            params["channel"] = channel
        found = await self._get("billing-events", self.billing_url, "/v1/balance-history",
                                params)
        assert found is not None  # billing answers every month
        return found

    async def _get(self, name: str, base: str, path: str,
                   params: dict[str, str]) -> dict[str, Any] | None:
        body: dict[str, Any] | None = await self._json(name, base, path, params)
        return body

    async def _json(self, name: str, base: str, path: str, params: dict[str, str]) -> Any:
        """The peer's JSON answer; None when it answers 404."""
        try:
            async with self._slots:
                response = await self._client.get(base.rstrip("/") + path, params=params)
        except httpx.HTTPError as exc:
            raise PeerUnavailable(f"{name} did not answer: {exc!r}", peer=name,
                                  path=path) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PeerUnavailable(f"{name} answered {response.status_code}", peer=name,
                                  path=path, status=response.status_code,
                                  body=response.text[:500])
        return response.json()


def _month(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


async def billing_knows_customer(billing_url: str, token: str, customer_id: str,
                                 timeout_s: float) -> bool:
    """Does billing, the owner of customers, know this one? One call, for a rare admin write
    (an exemption for a customer credit-control has not heard of yet)."""
    url = f"{billing_url.rstrip('/')}/v1/customers/{quote(customer_id, safe='')}"
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise PeerUnavailable(f"billing-events did not answer: {exc!r}",
                              peer="billing-events", path="/v1/customers") from exc
    if response.status_code in (200, 404):
        return response.status_code == 200
    raise PeerUnavailable(f"billing-events answered {response.status_code}",
                          peer="billing-events", path="/v1/customers",
                          status=response.status_code)


# A preview renders at most this many decisions' SMS (each one call to the notifier).
MAX_RENDERED = 50


@dataclass(frozen=True)
class NoticeRenderer:
    """The notifier's rendering of decisions' SMS (`POST /v1/templates/preview`): the texts,
    recipients and segments its templates in force would send for each, nothing sent. For
    the sweep preview (credit/service_layer/preview.py), which is rare: a client per call."""

    notifier_url: str
    token: str
    timeout_s: float = 30.0

    async def __call__(self, events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """One list of messages per event (`{"decision": CreditDecisionMade}` or
        `{"state_change": CreditStateChanged}`), in order; raises PeerUnavailable when the
        notifier does not answer or refuses one."""
        slots = asyncio.Semaphore(MAX_CONCURRENT_CALLS)
        url = self.notifier_url.rstrip("/") + "/v1/templates/preview"
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {self.token}"},
                                     timeout=self.timeout_s) as client:

            async def one(event: dict[str, Any]) -> list[dict[str, Any]]:
                try:
                    async with slots:
                        response = await client.post(url, json=event)
                except httpx.HTTPError as exc:
                    raise PeerUnavailable(f"notifier did not answer: {exc!r}",
                                          peer="notifier", path=url) from exc
                if response.status_code != 200:
                    raise PeerUnavailable(f"notifier answered {response.status_code}",
                                          peer="notifier", path=url,
                                          status=response.status_code,
                                          body=response.text[:500])
                found: list[dict[str, Any]] = response.json()
                return found

            return list(await asyncio.gather(*(one(e) for e in events)))
