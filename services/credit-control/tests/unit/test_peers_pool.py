"""The peers client: one pooled connection set for every call, at most 8 calls in flight (a
36-month arrears report fires 144), closed with the app."""

import asyncio
from datetime import date

import httpx

from credit_control.adapters.peers import MAX_CONCURRENT_CALLS, Peers


async def test_a_wide_report_never_has_more_than_eight_calls_in_flight() -> None:
    in_flight, most, seen_auth = 0, 0, set()

    async def billing(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        seen_auth.add(request.headers["Authorization"])
        for _ in range(5):  # let the other calls pile up if nothing holds them back
            await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(200, json={"months": [], "url": str(request.url)})

    peers = Peers("http://billing/", "http://notifier", "http://gateway", "t0ken")
    pooled = httpx.AsyncClient(transport=httpx.MockTransport(billing),
                               headers=peers._client.headers)
    await peers._client.aclose()
    object.__setattr__(peers, "_client", pooled)
    months = [date(2010 + i // 12, i % 12 + 1, 1) for i in range(144)]
    bodies = await asyncio.gather(*[peers.receivables(m, m, None) for m in months])
    assert len(bodies) == 144 and most == MAX_CONCURRENT_CALLS
    assert bodies[0]["url"].startswith("http://billing/v1/receivables?")
    assert seen_auth == {"Bearer t0ken"}
    await peers.aclose()
    assert pooled.is_closed
