"""JSON logs with the service name and the correlation id of the request or event at hand."""

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from common.display_time import log_timestamp
from common.pii import mask_phone_numbers, redact

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


@contextlib.contextmanager
def correlated(cid: str | None) -> Iterator[None]:
    """Log lines and events written inside carry this correlation id."""
    token = correlation_id.set(cid)
    try:
        yield
    finally:
        correlation_id.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.correlation_id = correlation_id.get()
        return True


class MaskingJsonFormatter(JsonFormatter):
    """JSON lines with personal data masked: names in the structured fields known to hold
    them (and those names wherever else they appear in the line), phone numbers anywhere,
    including exception texts and values serialized by their repr."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return redact(super().process_log_record(log_data))  # type: ignore[no-any-return]

    def format(self, record: logging.LogRecord) -> str:
        return mask_phone_numbers(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # ISO-8601 with its offset, not logging's "2026-12-02 23:32:57,247" with no zone.
        return log_timestamp(record.created)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        MaskingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,  # Chinese stays readable (and greppable) in the log files
        )
    )
    handler.addFilter(_ContextFilter(service))
    # aiokafka's ERROR lines for what it retries while the broker settles become WARNINGs.
    from common.kafka_startup import TransientKafkaErrors  # here: kafka imports this module

    handler.addFilter(TransientKafkaErrors())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
