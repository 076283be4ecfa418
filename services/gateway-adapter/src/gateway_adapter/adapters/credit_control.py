"""credit-control, as reconciliation uses it: what it wants the chain to hold
(`GET /v1/provisioning/desired`, paged) and its repair of settled differences
(`POST /v1/provisioning/repairs`, in chunks)."""

import httpx
from pydantic import ValidationError

from common.contracts.reconciliation import (
    ChainRepair,
    ChainRepairBatch,
    ChainRepairRequest,
    ChainRepairResults,
    DesiredChainPage,
    DesiredChainState,
    RepairOutcome,
)

REPAIR_CHUNK = 500  # requests per POST (credit-control takes at most 1000)


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

    async def repair(self, requests: list[ChainRepairRequest]) -> list[ChainRepair]:
        """credit-control's outcome of each request, in order. A chunk that could not be asked
        is answered `failed` with the reason, and the next chunk is still tried (the chunks
        before it were sent: their outcomes must not be lost)."""
        outcomes: list[ChainRepair] = []
        async with httpx.AsyncClient(base_url=self._base_url, headers=self._headers,
                                     timeout=self._timeout) as client:
            for start in range(0, len(requests), REPAIR_CHUNK):
                chunk = requests[start:start + REPAIR_CHUNK]
                try:
                    outcomes += await self._repair_chunk(client, chunk)
                except DesiredStateUnavailable as exc:
                    outcomes += [ChainRepair(product_id=r.product_id, action=r.desired,
                                             outcome=RepairOutcome.FAILED, detail=str(exc))
                                 for r in chunk]
        return outcomes

    async def _repair_chunk(self, client: httpx.AsyncClient,
                            chunk: list[ChainRepairRequest]) -> list[ChainRepair]:
        body = ChainRepairBatch(items=tuple(chunk)).model_dump(mode="json")
        try:
            response = await client.post("/v1/provisioning/repairs", json=body)
            response.raise_for_status()
            answer = ChainRepairResults.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as exc:
            raise DesiredStateUnavailable(
                f"credit-control's repair at {self._base_url}: "
                f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        if len(answer.items) != len(chunk):
            raise DesiredStateUnavailable(
                f"credit-control answered {len(answer.items)} repairs for {len(chunk)}")
        return list(answer.items)

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
