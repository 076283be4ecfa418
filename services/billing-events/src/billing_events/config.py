from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    service_name: str = "billing-events"
    db_schema: str = "billing"
    http_port: int = 8101
    # Off only to prove the outbox (a crash between commit and send): rows wait unpublished
    # until a process with the relay on starts. Never off in production.
    relay_enabled: bool = True
    # Off for a process that should not apply credit-control's deductions (bench, tools).
    consume_decisions: bool = True
