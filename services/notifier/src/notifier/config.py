from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    service_name: str = "notifier"
    db_schema: str = "notifier"
    http_port: int = 8103
    send_batch_size: int = Field(default=500, ge=1)
    send_idle_poll_s: float = Field(default=0.05, gt=0)
    send_max_attempts: int = Field(default=5, ge=1)
    send_claim_timeout_s: float = Field(default=60, gt=0)  # > a batch's worth of submits
    send_backoff_base_s: float = Field(default=1.0, gt=0)
