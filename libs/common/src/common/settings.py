"""Settings shared by every service; each service subclasses with its own env prefix."""

import json
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.auth import TokenGrant, TokenTable
from common.clock import BUSINESS_TZ, DEFAULT_FLOOR, BusinessTimeBounds, Clock, SystemClock

DEV_TOKEN = "dev-token"
# Outside dev a token must be at least this long: a short one can be guessed.
MIN_TOKEN_LENGTH = 16


class ServiceSettings(BaseSettings):
    """Common knobs. A subclass sets `model_config = SettingsConfigDict(env_prefix="BILLING_")`."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    # "dev" (make run, tests) or anything else (staging, prod): outside dev the well-known
    # default token is refused, so a forgotten setting cannot open the internal API.
    environment: str = "dev"
    service_name: str = "service"
    database_url: str = "postgresql+asyncpg://creditctl:creditctl@127.0.0.1:15432/creditctl"
    db_schema: str = "public"
    kafka_bootstrap: str = "127.0.0.1:19092"
    topic_partitions: int = Field(default=6, ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Internal APIs are called by staff tools and other services; a shared bearer token keeps
    # a stray client on the network from changing credit state.
    api_token: SecretStr = SecretStr(DEV_TOKEN)
    # Staff tokens and roles, JSON: {"<token>": {"subject": "zhang.wei", "role": "operator"}}.
    # An empty value means none (docker compose passes an unset variable as "").
    api_tokens: Annotated[dict[str, TokenGrant], NoDecode] = Field(default_factory=dict)
    log_level: str = "INFO"
    consumer_batch_size: int = Field(default=500, ge=1)
    consumer_poll_ms: int = Field(default=200, ge=1)
    # Batches in flight at once in one consumer, on partitions of their own (`_Lanes` in
    # common/kafka.py): one decided in Python while another's statements run in PostgreSQL.
    consumer_lanes: int = Field(default=1, ge=1, le=8)
    # How long the broker may hold a consumer's fetch for partitions with nothing new
    # (`ConsumerRunner`: a partition drained meanwhile waits behind that fetch).
    consumer_fetch_wait_ms: int = Field(default=50, ge=1, le=500)
    # A consumed event failing with an error that is neither its own (refused at the edge or
    # by the database) nor the infrastructure's is tried this often, then dead-lettered.
    consumer_max_attempts: int = Field(default=5, ge=1)
    # A consumer with a partition behind its end that has not advanced for this long is
    # stalled: /readyz fails and creditctl_consumer_stalled_partitions counts it.
    consumer_stall_after_s: float = Field(default=120, gt=0)
    # A dead letter larger than this (the broker's max.message.bytes, 1 MiB by default, less
    # room for the batch overhead) carries a truncated body, so it can always be published.
    dlq_max_message_bytes: int = Field(default=1_000_000, ge=10_000)
    outbox_batch_size: int = Field(default=5000, ge=1)  # rows per relay batch
    # Relay batches sent and awaiting Kafka's acknowledgements at once (each holds an open
    # transaction and a connection of the pool while in flight).
    outbox_pipeline: int = Field(default=4, ge=1, le=8)
    outbox_idle_poll_s: float = Field(default=0.05, gt=0)
    # Published outbox rows are kept a while for inspection. Inbox rows must outlive
    # Kafka's retention (7 days by default): a redelivery can only come from the log.
    outbox_retention_days: int = Field(default=7, ge=1)
    inbox_retention_days: int = Field(default=14, ge=1)
    housekeeping_interval_s: float = Field(default=3600, gt=0)
    # Business time of writes (docs/operations.md "Business time"): `as_of` may lie in the
    # past down to the floor; ahead of the clock by at most the tolerance, unless this
    # service runs in simulation mode (demos, tests with far-future months). Off by default.
    simulation_mode: bool = False
    business_time_tolerance_s: float = Field(default=300, ge=0, le=86_400)
    business_time_floor: date = DEFAULT_FLOOR.date()
    # The simulation clock (docs/simulation-clock.md): business time that an admin moves
    # forward through credit-control's POST /v1/clock/advance, followed by every service
    # started with it. Off by default: the clock routes then refuse and nothing changes.
    simulation_clock: bool = False

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _tokens_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    def token_table(self) -> TokenTable:
        return TokenTable(self.api_token, self.api_tokens)

    def business_time_bounds(self, clock: Clock | None = None) -> BusinessTimeBounds:
        """`clock`: the service's (a simulated one: "ahead of the clock" is of its now)."""
        floor = datetime.combine(self.business_time_floor, datetime.min.time(), BUSINESS_TZ)
        return BusinessTimeBounds(simulation=self.simulation_mode, floor=floor,
                                  tolerance=timedelta(seconds=self.business_time_tolerance_s),
                                  clock=clock or SystemClock())

    @model_validator(mode="after")
    def _no_default_token_outside_dev(self) -> "ServiceSettings":
        if self.environment == "dev":
            return self
        if self.api_token.get_secret_value() == DEV_TOKEN:
            raise ValueError(f"{self.environment}: set a real API token (the default is public)")
        short = [grant.subject for token, grant in self.api_tokens.items()
                 if len(token) < MIN_TOKEN_LENGTH]
        if len(self.api_token.get_secret_value()) < MIN_TOKEN_LENGTH:
            short.insert(0, "the service token")
        if short:
            raise ValueError(f"{self.environment}: tokens shorter than {MIN_TOKEN_LENGTH} "
                             f"characters are refused ({', '.join(short)})")
        return self
