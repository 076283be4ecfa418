"""Issue 14, defects 3 and 4, against the four services as processes: each valid-shaped poison
value (month 13, int64 overflows, 4 KB ids, a NUL) and a message just under the broker's size
limit, on every consumed topic, is dead-lettered by every consumer of that topic with its
reason, while the next good event on the same partition and on the others is applied; and
afterwards no consumer group is left behind the log end."""

import copy
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts import (
    BALANCE_TOPIC,
    COMMANDS_TOPIC,
    DECISIONS_TOPIC,
    RESULTS_TOPIC,
    BalanceChanged,
    CreditDecisionMade,
    ProvisioningCommand,
    ProvisioningResult,
)
from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType, NoticeContext
from common.contracts.gateway import ChainStage, ProvisioningAction, StageOutcome
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import Contract
from common.kafka import dead_letter_topic
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack
from tests.reliability.invariants.stalls import check_stalls

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

NEAR_LIMIT = b"Q" * 1048440  # accepted by the broker (max.message.bytes 1048588)
BIG_ID = "X" * 4096
INT64_OVERFLOW = 2**63
AT = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)

# Who consumes each topic (the consumer group is the service's name; its inbox says applied).
CONSUMERS = {
    BALANCE_TOPIC: {"credit-control": "credit"},
    RESULTS_TOPIC: {"credit-control": "credit"},
    DECISIONS_TOPIC: {"billing-events": "billing", "notifier": "notifier"},
    COMMANDS_TOPIC: {"gateway-adapter": "gateway"},
}


def _customer(uid: str) -> CustomerSnapshot:
    manager = Person(name="钱经理", phone="13900000002")
    return CustomerSnapshot(customer_id=f"G{uid}", name="毒丸集团", tier=Tier.MID,
                            account_manager=manager, contacts=(manager,))


def _product(uid: str) -> ProductSnapshot:
    return ProductSnapshot(product_id=f"P{uid}", cpno=f"CP{uid}", name="移动办公",
                           family=ProductFamily.MAS, vendor="huawei")


def good(topic: str, key: str, uid: str) -> Contract:
    """A valid event for `topic` that each of its consumers applies (inbox row) and that
    needs nothing on the stack: no products, no SMS, no pending command."""
    if topic == BALANCE_TOPIC:
        return BalanceChanged(account_id=key, sequence=1, cause=BalanceCause.MASTER_DATA,
                              as_of=AT, balance_fen=0, amount_due_fen=0,
                              customer=_customer(uid))
    if topic == RESULTS_TOPIC:
        return ProvisioningResult(command_id=f"cmd-{key}", product_id=key,
                                  action=ProvisioningAction.SUSPEND, sequence=1,
                                  stage=ChainStage.BOSS, outcome=StageOutcome.APPLIED,
                                  final=False, at=AT)
    if topic == DECISIONS_TOPIC:
        context = NoticeContext(customer=_customer(uid), product=_product(uid),
                                amount_due_fen=0, as_of_date=date(2026, 11, 25))
        return CreditDecisionMade(
            decision_id=f"d-{key}", account_id=key, product_id=f"P{uid}",
            decision=DecisionType.ARREARS_CLEARED, rule_id="poison-test", reason="test",
            state_before=CreditState.NORMAL, state_after=CreditState.NORMAL, as_of=AT,
            context=context)
    return ProvisioningCommand(command_id=f"cmd-{key}", decision_id=f"d-{key}", product_id=key,
                               account_id=f"A{uid}", cpno=f"CP{uid}", family=ProductFamily.MAS,
                               vendor="huawei", action=ProvisioningAction.RESTORE, sequence=1,
                               requested_at=AT, customer_id=f"G{uid}")


# Per topic: (what it is, path in the payload, poison value, a word the reason must name).
POISON: dict[str, list[tuple[tuple[str | int, ...], Any, str]]] = {
    BALANCE_TOPIC: [
        (("dues",), [{"bill_month": "2026-13", "amount_due_fen": 100}], "bill_month"),
        (("balance_fen",), INT64_OVERFLOW, "balance_fen"),
        (("account_id",), BIG_ID, "account_id"),
        (("customer", "name"), "毒\x00丸", "name"),
    ],
    RESULTS_TOPIC: [
        (("sequence",), INT64_OVERFLOW, "sequence"),
        (("product_id",), BIG_ID, "product_id"),
        (("detail",), "a\x00b", "detail"),
    ],
    DECISIONS_TOPIC: [
        (("decision",), "deduction", ""),  # with the next one: a deduction of 2^63 fen
        (("product_id",), BIG_ID, "product_id"),
        (("reason",), "a\x00b", "reason"),
        (("context", "bill_month"), "2026-13", "bill_month"),
    ],
    COMMANDS_TOPIC: [
        (("sequence",), INT64_OVERFLOW, "sequence"),
        (("product_id",), BIG_ID, "product_id"),
        (("cpno",), "CP\x00", "cpno"),
    ],
}


@dataclass
class Sent:
    topic: str
    partition: int
    offset: int
    expect: str  # a word the dead letter's reason names


def _envelope(event: Contract, key: str, payload: dict[str, Any] | None = None) -> bytes:
    # json, not orjson: a poison payload carries integers past int64.
    return json.dumps({
        "event_id": str(uuid.uuid4()), "type": event.event_type, "source": "poison-test",
        "occurred_at": AT.isoformat(), "schema_version": 1, "key": key,
        "payload": payload if payload is not None else event.model_dump(mode="json")}).encode()


def _poisoned(event: Contract, path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(event.model_dump(mode="json"))
    target: Any = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return payload


async def test_every_poison_value_is_dead_lettered_and_nothing_stalls(
    services: ServiceProcesses, stack: Stack, db: AsyncEngine, uid: str,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap,
                                max_request_size=2 * 1024 * 1024)
    await producer.start()
    poison: list[Sent] = []
    good_ids: dict[str, list[tuple[str, int]]] = {}  # topic → (event id, partition)
    try:
        for topic, values in POISON.items():
            key = f"K{uid}"
            template = good(topic, key, uid)
            for path, value, word in values:
                payload = _poisoned(template, path, value)
                if topic == DECISIONS_TOPIC and path == ("decision",):
                    payload["amount_fen"] = INT64_OVERFLOW  # billing's deduction, 2^63 fen
                    word = "amount_fen"
                meta = await producer.send_and_wait(
                    topic, _envelope(template, key, payload), key=key.encode())
                poison.append(Sent(topic, meta.partition, meta.offset, word))
            meta = await producer.send_and_wait(topic, NEAR_LIMIT, key=key.encode())
            poison.append(Sent(topic, meta.partition, meta.offset, "not an envelope"))
            good_ids[topic] = await _send_good(producer, topic, uid, key, meta.partition)
    finally:
        await producer.stop()

    for topic, sent in good_ids.items():
        assert len({p for _, p in sent}) > 1, "good events on the poison's partition and others"
        for service, schema in CONSUMERS[topic].items():
            ids = [i for i, _ in sent]
            await eventually(lambda s=schema, c=service, i=ids: _applied(db, s, c, i),
                             lambda n, i=ids: n == len(i), timeout=120,
                             what=f"{service} applied the good events after the poison on {topic}")

    dead = await _dead_letters({s.topic for s in poison}, stack)
    for sent in poison:
        for service in CONSUMERS[sent.topic]:
            found = dead.get((service, sent.topic, sent.partition, sent.offset))
            assert found is not None, f"{service} did not dead-letter {sent}"
            reason = found["dlq-reason"].decode()
            assert sent.expect in reason, (sent, reason)
            if sent.expect == "not an envelope":
                assert found["dlq-truncated"] == str(len(NEAR_LIMIT)).encode()
                assert found["dlq-source-topic"] == sent.topic.encode()

    stalls = await check_stalls(stack.kafka_bootstrap, settle_s=60)
    assert stalls.ok and stalls.expected > 0, stalls


async def _send_good(producer: AIOKafkaProducer, topic: str, uid: str, key: str,
                     poisoned: int) -> list[tuple[str, int]]:
    """The next good event on the poison's partition, then good events until two other
    partitions have one too."""
    sent: list[tuple[str, int]] = []
    keys = [key, *(f"K{uid}-{n}" for n in range(50))]
    for k in keys:
        body = _envelope(good(topic, k, uid), k)
        meta = await producer.send_and_wait(topic, body, key=k.encode())
        sent.append((json.loads(body)["event_id"], meta.partition))
        if len({p for _, p in sent} - {poisoned}) >= 2:
            break
    return sent


async def _applied(db: AsyncEngine, schema: str, consumer: str, ids: list[str]) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            f"SELECT count(*) FROM {schema}.inbox WHERE consumer = :c "
            "AND event_id = ANY(CAST(:ids AS uuid[]))"), {"c": consumer, "ids": ids}) or 0)


async def _dead_letters(
    topics: set[str], stack: Stack,
) -> dict[tuple[str, str, int, int], dict[str, bytes]]:
    """Every dead letter of `topics` by (consumer, source topic, partition, offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap,
                                enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(dead_letter_topic(t), p) for t in sorted(topics)
               for p in consumer.partitions_for_topic(dead_letter_topic(t)) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[tuple[str, str, int, int], dict[str, bytes]] = {}
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    _index(found, r)
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
        return found
    finally:
        await consumer.stop()


def _index(found: dict[tuple[str, str, int, int], dict[str, bytes]],
           record: ConsumerRecord[bytes, bytes]) -> None:
    h = dict(record.headers)
    if {"dlq-consumer", "dlq-source-topic", "dlq-source-partition", "dlq-source-offset"} <= set(h):
        found[(h["dlq-consumer"].decode(), h["dlq-source-topic"].decode(),
               int(h["dlq-source-partition"]), int(h["dlq-source-offset"]))] = h
