from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from common.settings import DEV_TOKEN, ServiceSettings

from .domain.faults import Faults


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway-adapter"
    db_schema: str = "gateway"
    http_port: int = 8104
    # Three command batches in flight (common/kafka.py `_Lanes`): two gave +30–50 % commands/s
    # through the chain over one (docs/benchmarks.md, gateway-adapter); once a product's
    # results were one outbox row, a third gave +7 % more over two (median of ten
    # interleaved pairs; eighteenth session), PostgreSQL less often idle between batches.
    consumer_lanes: int = Field(default=3, ge=1, le=8)
    # The fault knobs until `PUT /v1/faults` sets others (JSON in GATEWAY_FAULTS); the default
    # is a healthy chain without delays.
    faults: Faults = Faults()
    worker_batch: int = Field(default=500, ge=1)
    worker_idle_poll_s: float = Field(default=0.05, gt=0)
    # Reconciliation reads credit-control's desired chain state.
    credit_control_url: str = "http://127.0.0.1:8102"
    credit_control_token: SecretStr = SecretStr(DEV_TOKEN)
    reconciliation_interval_s: float = Field(default=0, ge=0)  # 0: no scheduled job
    stuck_emos_order_after_s: float = Field(default=3600, gt=0)
    # Stored runs repair settled missed / wrong suspensions through credit-control; false:
    # they only report them (docs/gateway.md, Reconciliation).
    reconciliation_repair: bool = True
    # CMPP 2.0 server (entrypoints/cmpp_server.py) next to the HTTP API: unset = no listener
    # (the suite's gateways set one; the standard's port is 7890). 0 = any free port.
    cmpp_port: int | None = Field(default=None, ge=0, le=65535)
    cmpp_host: str | None = None  # default: http_host
    cmpp_window: int = Field(default=16, ge=1, le=1024)
    cmpp_login_timeout_s: float = Field(default=10, gt=0)
    cmpp_idle_timeout_s: float = Field(default=180, gt=0)
    cmpp_pdu_timeout_s: float = Field(default=10, gt=0)
    cmpp_gateway_code: int = Field(default=1, ge=0, le=0x3FFFFF)
