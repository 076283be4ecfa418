"""Issue 20: a first start logs no ERROR line for what is expected while Kafka is new. The
four services start as real processes against a brand-new broker (its own folder and ports,
started here with deploy/local/stack.sh) and an empty database of their own, so their topics
do not exist yet and the group coordinator's topic is still to be made, exactly as on a
first `make run`. Before the fix: ~24 ERROR lines (topic not found, coordinator not
available, fetch offsets failed)."""

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError, GroupLoadInProgressError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
BASE = int(os.environ.get("CREDITCTL_TEST_BASE_PORT", "18100")) + 70
GROUPS = ("billing-events", "credit-control", "notifier", "gateway-adapter")


def _specs() -> list[ServiceSpec]:
    return [
        ServiceSpec("billing-events", "billing_events", "BILLING_", BASE + 1),
        ServiceSpec("credit-control", "credit_control", "CREDIT_", BASE + 2, extra_env=(
            ("CREDIT_BILLING_URL", f"http://127.0.0.1:{BASE + 1}"),
            ("CREDIT_NOTIFIER_URL", f"http://127.0.0.1:{BASE + 3}"),
            ("CREDIT_GATEWAY_URL", f"http://127.0.0.1:{BASE + 4}"),
            ("CREDIT_PEER_TOKEN", "startup-token"))),
        ServiceSpec("notifier", "notifier", "NOTIFIER_", BASE + 3),
        ServiceSpec("gateway-adapter", "gateway_adapter", "GATEWAY_", BASE + 4, extra_env=(
            ("GATEWAY_CREDIT_CONTROL_URL", f"http://127.0.0.1:{BASE + 2}"),
            ("GATEWAY_CREDIT_CONTROL_TOKEN", "startup-token"))),
    ]


@pytest.fixture
def fresh_kafka() -> Iterator[str]:
    """A single-node broker that has never held a topic, stopped and deleted afterwards."""
    env = {**os.environ, "STACK": f"startup{BASE}", "KAFKA_PORT": str(BASE + 10),
           "KAFKA_CONTROLLER_PORT": str(BASE + 11), "PG_PORT": str(BASE + 12),
           "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m"}

    def stack(verb: str) -> None:
        subprocess.run(["bash", "deploy/local/stack.sh", verb], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=180)

    stack("reset")  # nothing left from an interrupted run
    stack("kafka-start")
    try:
        yield f"127.0.0.1:{BASE + 10}"
    finally:
        stack("reset")


@pytest.fixture
async def fresh_database(stack: Stack) -> AsyncIterator[str]:
    name = f"creditctl_startup_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(stack.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield stack.database_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _joined_groups(bootstrap: str) -> set[str]:
    """The consumer groups the broker knows: a group exists once a member found its
    coordinator and joined. While the broker still loads its group coordinator (the offsets
    topic is new) listing answers with a retriable error: no group is known yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {group for group, _ in await admin.list_consumer_groups()}
    except (GroupLoadInProgressError, GroupCoordinatorNotAvailableError):
        return set()
    finally:
        await admin.close()


def _lines(log_dir: Path) -> list[dict[str, object]]:
    found = []
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                found.append({"level": "RAW", "message": line, "logger": path.name})
    return found


async def test_a_first_start_on_a_new_broker_logs_no_error(
    fresh_kafka: str, fresh_database: str, tmp_path: Path,
) -> None:
    processes = ServiceProcesses(_specs(), Stack(fresh_database, fresh_kafka), tmp_path,
                                 "startup-token")
    for spec in _specs():
        processes.migrate(spec.name)
    try:
        await asyncio.to_thread(processes.start_all)
        # Ready is not yet joined: wait until every consumer group exists, the step that
        # logged "Group Coordinator Request failed" before.
        await eventually(lambda: _joined_groups(fresh_kafka), lambda s: s >= set(GROUPS),
                         timeout=120, interval=1, what="every consumer group joined")
        await asyncio.sleep(5)  # the first fetches of the just-made topics' offsets
    finally:
        await asyncio.to_thread(processes.stop_all)
    lines = _lines(tmp_path)
    assert any("Kafka settled" in str(x.get("message")) for x in lines), "no settle step ran"
    # A line that is not JSON is a traceback or a crash printed to stderr: as bad.
    bad = [x for x in lines if x.get("level") in {"ERROR", "CRITICAL", "RAW"}]
    assert not bad, "ERROR lines at start-up:\n" + "\n".join(
        f"{x.get('logger')}: {x.get('message')}" for x in bad)
