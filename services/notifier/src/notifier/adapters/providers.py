"""The SMS provider interface, and a provider for a real SMS API over HTTP (httpx).

A provider takes a batch of submissions and answers per message: the provider's message id,
or why it was refused. Every submission carries the notifier's message id as client reference
(and Idempotency-Key header): a resubmission after a crash between submit and bookkeeping
must be recognised by the provider, which is how "never twice" holds across crashes.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Submission:
    client_ref: str  # the notifier's message id
    recipient: str
    text: str
    segments: int


@dataclass(frozen=True)
class SubmitOutcome:
    client_ref: str
    provider_message_id: str | None  # None: refused, see error
    error: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt: the phone got it (delivered), or the network gave up (rejected)."""

    provider_message_id: str
    status: str  # delivered | rejected
    at: datetime
    error: str | None = None


class SmsProvider(Protocol):
    async def submit_many(self, batch: Sequence[Submission]) -> list[SubmitOutcome]:
        """Hand a batch to the SMSC; one outcome per submission. Same client_ref → same id."""
        ...


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


class HttpSmsProvider:
    """A JSON SMS API: POST {base_url}/sms {"client_ref", "to", "text"} → {"message_id"}.

    Each message is its own request (most operator APIs take one number and one text); up to
    `concurrency` are in flight at once. A 4xx or 5xx, a timeout or a refused connection is
    that message's failure, retried by the sender with backoff."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 10.0,
                 concurrency: int = 20) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s,
            headers={"Authorization": f"Bearer {token}"} if token else {})
        self._slots = asyncio.Semaphore(concurrency)

    async def submit_many(self, batch: Sequence[Submission]) -> list[SubmitOutcome]:
        return list(await asyncio.gather(*(self._submit(s) for s in batch)))

    async def _submit(self, s: Submission) -> SubmitOutcome:
        async with self._slots:
            try:
                response = await self._client.post(
                    "/sms", json={"client_ref": s.client_ref, "to": s.recipient, "text": s.text},
                    headers={"Idempotency-Key": s.client_ref})
            except httpx.HTTPError as exc:
                return SubmitOutcome(s.client_ref, None, describe(exc))
        if response.status_code >= 300:
            error = f"HTTP {response.status_code}: {response.text}"[:MAX_ERROR_CHARS]
            return SubmitOutcome(s.client_ref, None, error)
        try:
            message_id = response.json()["message_id"]
        except (ValueError, KeyError, TypeError) as exc:
            return SubmitOutcome(s.client_ref, None, f"unreadable answer: {describe(exc)}")
        return SubmitOutcome(s.client_ref, str(message_id))

    async def aclose(self) -> None:
        await self._client.aclose()
