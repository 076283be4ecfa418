"""Settings: the well-known dev token never opens a non-dev deployment."""

import pytest
from pydantic import SecretStr, ValidationError

from common.settings import DEV_TOKEN, ServiceSettings


def test_dev_may_use_the_default_token() -> None:
    assert ServiceSettings().api_token.get_secret_value() == DEV_TOKEN


@pytest.mark.parametrize("environment", ["prod", "staging"])
def test_other_environments_refuse_the_default_token(environment: str) -> None:
    with pytest.raises(ValidationError, match="set a real API token"):
        ServiceSettings(environment=environment)


def test_other_environments_accept_a_real_token() -> None:
    settings = ServiceSettings(environment="prod", api_token=SecretStr("s3cr3t-from-vault"))
    assert settings.api_token.get_secret_value() == "s3cr3t-from-vault"
