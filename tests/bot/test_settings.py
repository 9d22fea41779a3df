from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError


def test_no_settings_means_local_mode_on_sqlite() -> None:
    settings = Settings.from_env({})
    assert settings.local_mode
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert (settings.host, settings.port) == ("127.0.0.1", 3978)
    assert settings.allowed_service_hosts == ("smba.trafficmanager.net",)


def test_credentials_switch_local_mode_off_and_are_kept_out_of_repr() -> None:
    settings = Settings.from_env(
        {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": "s3cret-value", "ANTHROPIC_API_KEY": "sk-ant-xyz"}
    )
    assert not settings.local_mode
    assert "s3cret-value" not in repr(settings)
    assert "sk-ant-xyz" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MICROSOFT_APP_ID": "app"}, "MICROSOFT_APP_PASSWORD"),
        ({"MICROSOFT_APP_ID": "a", "MICROSOFT_APP_PASSWORD": "p", "MICROSOFT_APP_TYPE": "SingleTenant"}, "TENANT_ID"),
        ({"MICROSOFT_APP_TYPE": "Personal"}, "MICROSOFT_APP_TYPE"),
        ({"COS_PORT": "eighty"}, "COS_PORT"),
        ({"COS_PORT": "70000"}, "COS_PORT"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_extra_service_hosts_are_added_to_teams() -> None:
    settings = Settings.from_env({"COS_ALLOWED_SERVICE_HOSTS": "a.example, b.example;"})
    assert settings.allowed_service_hosts == ("smba.trafficmanager.net", "a.example", "b.example")
