"""Fixtures for credit-control's integration tests (helpers in helpers.py)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.kafka import Publisher
from common.testing.stack import Stack

from .helpers import CreditApi


@pytest.fixture(scope="session")
async def publisher(stack: Stack) -> AsyncIterator[Publisher]:
    found = Publisher(stack.kafka_bootstrap, "credit-control-tests")
    await found.start()
    yield found
    await found.stop()


@pytest.fixture(scope="session")
async def api(clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
              publisher: Publisher) -> CreditApi:
    return CreditApi(clients["credit-control"], db, publisher)

