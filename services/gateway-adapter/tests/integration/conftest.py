"""Fixtures for the gateway's integration tests: commands onto Kafka as credit-control would
send them, a tap on the results topic, the fault knobs reset after each test, and a stand-in
for credit-control's desired-state endpoint."""

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import SystemClock
from common.contracts.gateway import (
    RESULTS_TOPIC,
    ProvisioningAction,
    ProvisioningCommand,
    ProvisioningResult,
)
from common.contracts.reconciliation import DesiredChainPage, DesiredChainState
from common.contracts.snapshots import ProductFamily
from common.envelope import convert, to_bytes, wrap
from common.kafka import Publisher
from common.outbox import Outbox
from common.testing.polling import eventually
from common.testing.stack import Stack
from gateway_adapter.adapters import tables
from gateway_adapter.service_layer.context import GatewayContext


class ResultsTap:
    """Every ProvisioningResult published after it started, for products with our prefix."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self._bootstrap, self._prefix = bootstrap, prefix
        self.results: list[ProvisioningResult] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap,
                                          enable_auto_commit=False)
        await self._consumer.start()
        parts = await eventually(self._partitions, lambda p: bool(p), timeout=30,
                                 what="results topic exists")
        tps = [TopicPartition(RESULTS_TOPIC, p) for p in parts]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:
            await self._consumer.position(tp)  # resolve the end now, before we publish
        self._task = asyncio.create_task(self._read())

    async def _partitions(self) -> set[int] | None:
        # The consumer's own metadata only covers subscribed topics: ask the cluster.
        cluster = await self._consumer._client.fetch_all_metadata()
        return cluster.partitions_for_topic(RESULTS_TOPIC)

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for r in records:
                    payload = json.loads(r.value or b"{}").get("payload", {})
                    if str(payload.get("product_id", "")).startswith(self._prefix):
                        self.results.append(convert(payload, ProvisioningResult))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def of(self, command_id: str, attempt: int | None = None) -> list[ProvisioningResult]:
        return [r for r in self.results if r.command_id == command_id
                and (attempt is None or r.attempt == attempt)]

    def final(self, command_id: str, attempt: int) -> ProvisioningResult | None:
        return next((r for r in self.of(command_id, attempt) if r.final), None)

    async def wait_final(self, command_id: str, attempt: int = 1,
                         timeout: float = 30) -> ProvisioningResult:
        found = await eventually(lambda: asyncio.sleep(0, self.final(command_id, attempt)),
                                 lambda r: r is not None, timeout=timeout,
                                 what=f"final result of {command_id} attempt {attempt}")
        assert found is not None
        return found


class CreditControlStandIn:
    """Sends ProvisioningCommands as credit-control does: keyed by product, sequence per
    product, attempt+1 for a retry."""

    def __init__(self, publisher: Publisher, uid: str) -> None:
        self._publisher, self.uid = publisher, uid

    def command(self, product: str, action: ProvisioningAction, sequence: int, *,
                vendor: str | None = "huawei", family: ProductFamily = ProductFamily.MAS,
                attempt: int = 1, command_id: str | None = None) -> ProvisioningCommand:
        return ProvisioningCommand(
            command_id=command_id or f"cmd-{product}-{sequence}", decision_id=f"d-{product}",
            product_id=product, account_id=f"A{product}", cpno=f"CP{product}", family=family,
            vendor=vendor, action=action, sequence=sequence, requested_at=datetime.now(UTC),
            attempt=attempt, customer_id=f"G{self.uid}")

    async def send(self, *commands: ProvisioningCommand) -> None:
        await self._publisher.send_many([
            (c.topic, c.product_id.encode(),
             to_bytes(wrap(c, key=c.product_id, source="test-credit-control",
                           occurred_at=datetime.now(UTC), event_id=uuid.uuid4())))
            for c in commands])


@pytest.fixture
async def gateway(clients: dict[str, httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    """The running gateway-adapter; its fault knobs go back to the defaults afterwards."""
    client = clients["gateway-adapter"]
    yield client
    assert (await client.delete("/v1/faults")).status_code == 200


@pytest.fixture
async def tap(stack: Stack, uid: str) -> AsyncIterator[ResultsTap]:
    found = ResultsTap(stack.kafka_bootstrap, f"gw{uid}")
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
async def credit(stack: Stack, uid: str) -> AsyncIterator[CreditControlStandIn]:
    publisher = Publisher(stack.kafka_bootstrap, "gateway-test")
    await publisher.start()
    yield CreditControlStandIn(publisher, uid)
    await publisher.stop()


class DesiredServer:
    """Serves `GET /v1/provisioning/desired` as credit-control does (DesiredChainPage, paged
    by product id), with whatever rows the test puts in `rows`."""

    def __init__(self) -> None:
        self.rows: list[DesiredChainState] = []
        self.seen_tokens: list[str] = []
        rows, seen = lambda: sorted(self.rows, key=lambda r: r.product_id), self.seen_tokens

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlparse
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                seen.append(self.headers.get("Authorization", ""))
                after, limit = q.get("after", ""), int(q.get("limit", "1000"))
                page = [r for r in rows() if r.product_id > after][:limit]
                more = len([r for r in rows() if r.product_id > after]) > limit
                body = DesiredChainPage(items=tuple(page),
                                        next_after=page[-1].product_id if more else None)
                data = body.model_dump_json().encode()
                self.send_response(200 if url.path == "/v1/provisioning/desired" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def want(self, product: str, action: ProvisioningAction, sequence: int, uid: str,
             family: ProductFamily = ProductFamily.MAS) -> None:
        self.rows = [r for r in self.rows if r.product_id != product]
        self.rows.append(DesiredChainState(
            product_id=product, account_id=f"A{product}", customer_id=f"G{uid}",
            cpno=f"CP{product}", family=family, desired=action, sequence=sequence,
            since=datetime.now(UTC)))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def desired_server() -> Iterator[DesiredServer]:
    server = DesiredServer()
    yield server
    server.stop()


@pytest.fixture
def in_process(db: AsyncEngine) -> GatewayContext:
    """The gateway's use cases on the same database as the running process (reconciliation
    against a desired-state source the test chooses)."""
    return GatewayContext(db, Outbox(tables.outbox), SystemClock())
