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


def test_other_environments_refuse_short_staff_tokens() -> None:
    grants = {"short": {"subject": "li.na", "role": "ops-viewer"},
              "a-long-enough-staff-token": {"subject": "zhang.wei", "role": "credit-admin"}}
    with pytest.raises(ValidationError, match=r"shorter than 16 characters are refused \(li.na\)"):
        ServiceSettings(environment="prod", api_token=SecretStr("s3cr3t-from-vault"),
                        api_tokens=grants)
    with pytest.raises(ValidationError, match="the service token"):
        ServiceSettings(environment="prod", api_token=SecretStr("short"))
    dev = ServiceSettings(api_tokens=grants)  # dev (tests, make run) keeps short demo tokens
    assert dev.token_table().resolve("short") is not None


def test_staff_tokens_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_API_TOKENS", '{"operator-token-0123456789": '
                       '{"subject": "wang.fang", "role": "operator"}}')
    principal = ServiceSettings().token_table().resolve("operator-token-0123456789")
    assert principal is not None
    assert (principal.subject, principal.role.value) == ("wang.fang", "operator")


def test_an_empty_staff_token_setting_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_API_TOKENS", "")  # what compose passes for an unset variable
    assert ServiceSettings().api_tokens == {}
