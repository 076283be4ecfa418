"""Where the local stack (real Kafka and PostgreSQL) is, as the Makefile exported it."""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Stack:
    database_url: str
    kafka_bootstrap: str


def stack_from_env() -> Stack | None:
    url = os.environ.get("CREDITCTL_DATABASE_URL")
    kafka = os.environ.get("CREDITCTL_KAFKA_BOOTSTRAP")
    if not url or not kafka:
        return None
    return Stack(url, kafka)


def stack_required() -> bool:
    """`make test` sets this, so a missing stack fails the run instead of skipping tests."""
    return os.environ.get("CREDITCTL_REQUIRE_STACK") == "1"
