"""Settings shared by every service; each service subclasses with its own env prefix."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common knobs. A subclass sets `model_config = SettingsConfigDict(env_prefix="BILLING_")`."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    service_name: str = "service"
    database_url: str = "postgresql+asyncpg://creditctl:creditctl@127.0.0.1:15432/creditctl"
    db_schema: str = "public"
    kafka_bootstrap: str = "127.0.0.1:19092"
    topic_partitions: int = Field(default=6, ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Internal APIs are called by staff tools and other services; a shared bearer token keeps
    # a stray client on the network from changing credit state.
    api_token: SecretStr = SecretStr("dev-token")
    log_level: str = "INFO"
    consumer_batch_size: int = Field(default=500, ge=1)
    consumer_poll_ms: int = Field(default=200, ge=1)
    outbox_batch_size: int = Field(default=1000, ge=1)
    outbox_idle_poll_s: float = Field(default=0.05, gt=0)
