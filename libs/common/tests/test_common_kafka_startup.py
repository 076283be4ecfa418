"""aiokafka's ERROR lines for retried, transient conditions become WARNINGs that say why
(issue 20); any other ERROR passes untouched. The start-up against a new broker is proved in
tests/e2e/test_startup_logs.py."""

import logging

from common.kafka_startup import TransientKafkaErrors


def record(logger: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(logger, level, __file__, 1, msg, args, None)


def test_the_coordinator_not_yet_available_is_a_warning_saying_why() -> None:
    r = record("aiokafka.consumer.group_coordinator", logging.ERROR,
               "Group Coordinator Request failed: %s", "[Error 15] GroupCoordinatorNotAvailable")
    assert TransientKafkaErrors().filter(r)
    assert (r.levelno, r.levelname) == (logging.WARNING, "WARNING")
    assert r.getMessage().startswith("Group Coordinator Request failed: [Error 15]")
    assert "transient while Kafka starts" in r.getMessage()


def test_a_topic_not_yet_in_metadata_and_offsets_not_yet_led_are_warnings() -> None:
    for logger, msg in (("aiokafka.cluster", "Topic %s not found in cluster metadata"),
                        ("aiokafka.consumer.fetcher", "Failed fetch offsets from %s: %s")):
        r = record(logger, logging.ERROR, msg, "x", "y")
        TransientKafkaErrors().filter(r)
        assert r.levelno == logging.WARNING, logger


def test_other_errors_pass_unchanged() -> None:
    for r in (record("aiokafka.cluster", logging.ERROR, "Topic %s is not authorized", "x"),
              record("common.kafka", logging.ERROR, "Group Coordinator Request failed"),
              record("aiokafka.cluster", logging.WARNING, "Topic %s not found in cluster metadata",
                     "x")):
        before = (r.levelno, r.levelname, r.msg)
        assert TransientKafkaErrors().filter(r)
        assert (r.levelno, r.levelname, r.msg) == before
