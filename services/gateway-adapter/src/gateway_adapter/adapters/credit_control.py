"""Reads what credit-control wants the chain to hold: `GET /v1/provisioning/desired`, paged."""

import httpx
from pydantic import ValidationError

from common.contracts.reconciliation import DesiredChainPage, DesiredChainState


class DesiredStateUnavailable(Exception):
    """credit-control could not be asked, or answered something that is not a page."""


class DesiredChainSource:
    def __init__(self, base_url: str, token: str, *, page_size: int = 1000,
                 timeout_s: float = 10.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._page_size = page_size
        self._timeout = timeout_s

    async def fetch_all(self) -> list[DesiredChainState]:
        items: list[DesiredChainState] = []
        after: str | None = None
        async with httpx.AsyncClient(base_url=self._base_url, headers=self._headers,
                                     timeout=self._timeout) as client:
            while True:
                page = await self._page(client, after)
                items += page.items
                if page.next_after is None or not page.items:
                    return items
                after = page.next_after

    async def _page(self, client: httpx.AsyncClient, after: str | None) -> DesiredChainPage:
        params: dict[str, str | int] = {"limit": self._page_size}
        if after is not None:
            params["after"] = after
        try:
            response = await client.get("/v1/provisioning/desired", params=params)
            response.raise_for_status()
            return DesiredChainPage.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as exc:
            raise DesiredStateUnavailable(
                f"credit-control's desired chain state at {self._base_url}: "
                f"{type(exc).__name__}: {str(exc)[:300]}") from exc
