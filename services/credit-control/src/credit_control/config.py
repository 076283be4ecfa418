from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CREDIT_", extra="ignore")

    service_name: str = "credit-control"
    db_schema: str = "credit"
    http_port: int = 8102
