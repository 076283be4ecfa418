from pydantic import Field
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
    # Late fees (滞纳金, docs/billing.md "Late fees"): off by default. A daily rate on what an
    # overdue bill still owes, after a grace period past its due date, capped per bill.
    late_fees_enabled: bool = False
    late_fee_rate_bp_per_day: int = Field(default=30, ge=0, le=1_000)  # 0.3 %/day (千分之三)
    late_fee_grace_days: int = Field(default=15, ge=0, le=365)
    late_fee_cap_bp: int = Field(default=3_000, ge=0, le=10_000)  # ≤ 30 % of what it owes
