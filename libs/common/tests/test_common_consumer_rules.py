"""The consumer's rules that need no broker: which errors are retried without limit, and the
dead letter of a record too large for the broker."""

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from common.db import is_event_error, is_infrastructure_error
from common.envelope import UnprocessableMessage
from common.kafka import dead_letter_record

BROKER_LIMIT = 1_048_588  # Kafka's default max.message.bytes
MAX = 1_000_000  # ServiceSettings.dlq_max_message_bytes

class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate

def _db_error(state: str) -> DBAPIError:
    return DBAPIError("INSERT ...", None, _DriverError(state))

@pytest.mark.parametrize("exc", [
    _db_error("08006"),  # connection failure
    _db_error("40001"),  # serialization failure
    _db_error("40P01"),  # deadlock
    _db_error("57P01"),  # admin shutdown
    _db_error("57P03"),  # cannot connect now
    _db_error("53100"),  # disk full
    _db_error("55P03"),  # lock not available
    OperationalError("SELECT 1", None, ConnectionRefusedError()),
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
    KafkaConnectionError(),
])
def test_infrastructure_errors_are_retried_without_limit(exc: BaseException) -> None:
    assert is_infrastructure_error(exc)
    assert not is_event_error(exc)

def test_an_infrastructure_error_behind_another_is_seen() -> None:
    try:
        try:
            raise ConnectionResetError("peer gone")
        except ConnectionResetError as inner:
            raise RuntimeError("handler failed") from inner
    except RuntimeError as outer:
        assert is_infrastructure_error(outer)

class _Model(BaseModel):
    n: int

def _validation_error() -> ValidationError:
    try:
        _Model.model_validate({"n": "x"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")

@pytest.mark.parametrize("exc", [
    _db_error("22003"),  # numeric out of range: the event's fault
    _db_error("22021"),  # a NUL in a text
    _db_error("23505"),  # unique violation
    UnprocessableMessage("bad"),
    _validation_error(),
])
def test_the_events_own_faults_are_not_infrastructure(exc: BaseException) -> None:
    assert is_event_error(exc)
    assert not is_infrastructure_error(exc)

@pytest.mark.parametrize("exc", [
    ValueError("month must be in 1..12"),
    OverflowError("int too big"),
    KeyError("x"),
    _db_error("54000"),  # index row size exceeds btree maximum
    _db_error("23502"),  # a NOT NULL our own statement broke: a bug
    MessageSizeTooLargeError(),
])
def test_anything_else_is_neither_and_gets_a_few_attempts(exc: BaseException) -> None:
    assert not is_infrastructure_error(exc)
    assert not is_event_error(exc)

def _record(value: bytes, key: bytes | None = b"A-1") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic="billing.balance.v1", partition=3, offset=42, timestamp=0,
                          timestamp_type=0, key=key, value=value, checksum=None,
                          serialized_key_size=len(key or b""), serialized_value_size=len(value),
                          headers=())

def _size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers)

def test_a_small_dead_letter_keeps_its_body_and_says_where_it_came_from() -> None:
    key, value, headers = dead_letter_record(_record(b"{bad"), "not an envelope", "credit", MAX)
    assert (key, value) == (b"A-1", b"{bad")
    assert dict(headers) == {
        "dlq-reason": b"not an envelope", "dlq-source-topic": b"billing.balance.v1",
        "dlq-source-partition": b"3", "dlq-source-offset": b"42", "dlq-consumer": b"credit"}

def test_a_dead_letter_at_the_brokers_limit_is_truncated_to_fit() -> None:
    original = b"Q" * 1_048_440  # accepted by the broker; with the headers it was not
    key, value, headers = dead_letter_record(_record(original), "not an envelope " * 200,
                                             "credit-control", MAX)
    found = dict(headers)
    assert found["dlq-truncated"] == str(len(original)).encode()
    assert found["dlq-source-topic"] == b"billing.balance.v1"
    assert found["dlq-source-partition"] == b"3" and found["dlq-source-offset"] == b"42"
    assert found["dlq-reason"].startswith(b"not an envelope")
    assert key == b"A-1"
    assert original.startswith(value) and len(value) > MAX // 2
    assert _size(key, value, headers) + 512 <= MAX < BROKER_LIMIT

def test_an_oversized_key_is_cut_too() -> None:
    key, value, headers = dead_letter_record(_record(b"x" * 900_000, key=b"K" * 400_000),
                                             "reason", "notifier", MAX)
    found = dict(headers)
    assert key == b"K" * 1024 and found["dlq-key-truncated"] == b"400000"
    assert found["dlq-truncated"] == b"900000"
    assert _size(key, value, headers) + 512 <= MAX
