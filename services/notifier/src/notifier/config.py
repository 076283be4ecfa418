from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from common.sending_hours import CUSTOMER_SENDING_HOURS, MANAGER_SENDING_HOURS
from common.settings import ServiceSettings

from .domain.quiet_hours import SendingWindow
from .domain.templates import TemplateName


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
    # Quiet hours, Asia/Shanghai wall time: customers get reminders only inside their window;
    # account managers are staff and, by default, are told at once. The customers' default is
    # the one credit-control's CREDIT_CUSTOMER_SENDING_HOURS has (common/sending_hours.py): a
    # suspension warning's date counts its notice from when this window lets it leave, so the
    # two must match if either is changed (docs/operations.md).
    customer_sending_hours: str = CUSTOMER_SENDING_HOURS
    manager_sending_hours: str = MANAGER_SENDING_HOURS
    # Pacing a backlog released at the end of quiet hours: held messages that may leave per
    # second per sender (0: no limit; the first `release_burst` go at once), and the minimum
    # gap between two messages to the same number (0: none).
    release_rate_per_s: float = Field(default=20.0, ge=0)
    release_burst: int = Field(default=20, ge=1)
    recipient_min_gap_s: float = Field(default=1.0, ge=0)
    # Which provider sends: the simulated SMSC, or a real SMS API over HTTP.
    provider: Literal["simulated", "http", "smpp"] = "simulated"
    http_provider_url: str = "http://127.0.0.1:9000"
    http_provider_token: SecretStr = SecretStr("")
    http_provider_timeout_s: float = Field(default=10.0, gt=0)
    http_provider_concurrency: int = Field(default=20, ge=1)
    # SMPP 3.4 (provider "smpp", adapters/smpp/provider.py): the SMS centre to bind to. A real
    # SMSC by configuration only; the simulated one listens when smsc_smpp_port is set.
    smpp_host: str = "127.0.0.1"
    smpp_port: int = Field(default=2775, ge=1, le=65535)
    smpp_system_id: str = Field(default="notifier", max_length=15)
    smpp_password: SecretStr = SecretStr("secret")
    smpp_system_type: str = Field(default="", max_length=12)
    smpp_bind: Literal["transceiver", "transmitter"] = "transceiver"
    smpp_source_addr: str = Field(default="10086", max_length=20)
    smpp_enquire_link_s: float = Field(default=30.0, gt=0)
    smpp_response_timeout_s: float = Field(default=10.0, gt=0)
    smpp_window: int = Field(default=10, ge=1, le=1000)
    smpp_throttle_backoff_s: float = Field(default=0.2, gt=0)
    smpp_throttle_retries: int = Field(default=6, ge=0)
    # The simulated SMSC as an SMPP server on this port (unset: none), with the system id and
    # password above, and a submit_sm rate per session above which it answers ESME_RTHROTTLED.
    smsc_smpp_port: int | None = Field(default=None, ge=0, le=65535)
    smsc_smpp_max_rate_per_s: float = Field(default=0.0, ge=0)
    # The simulated SMSC's starting faults (PUT /v1/smsc/faults changes them at run time).
    smsc_failure_rate: float = Field(default=0.0, ge=0, le=1)
    smsc_latency_s: float = Field(default=0.0, ge=0)
    smsc_receipt_delay_s: float = Field(default=0.2, ge=0)
    receipt_poll_s: float = Field(default=0.2, gt=0)
    # Reminder timeliness: a reminder counts when delivered within this time of the decision.
    reminder_deadline_hours: float = Field(default=24.0, gt=0)
    # Notice outcomes published on notifier.notices.v1 (sent / delivered / failed /
    # cancelled), for these templates, comma-separated: credit-control waits for the
    # suspension warning's delivery before it suspends.
    notice_outcome_templates: str = "suspension_warning"
    # A followed notice accepted by the SMSC but not delivered within this time (business
    # time) is published `failed` (docs/notifier.md "Receipt timeout"): 24 h, the reminder
    # timeliness deadline and a usual SMSC validity period, well inside credit-control's
    # CREDIT_NOTICE_UNHEARD_AFTER_DAYS. How often the overdue notices are looked for:
    receipt_timeout_s: float = Field(default=86_400.0, gt=0)
    receipt_timeout_poll_s: float = Field(default=30.0, gt=0)

    @property
    def outcome_templates(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.notice_outcome_templates.split(",")
                         if t.strip())

    @field_validator("notice_outcome_templates")
    @classmethod
    def _templates(cls, value: str) -> str:
        known = {t.value for t in TemplateName}
        unknown = sorted({t.strip() for t in value.split(",") if t.strip()} - known)
        if unknown:
            raise ValueError(f"unknown templates {unknown}")
        return value

    @field_validator("customer_sending_hours", "manager_sending_hours")
    @classmethod
    def _window(cls, value: str) -> str:
        SendingWindow.parse(value)
        return value
