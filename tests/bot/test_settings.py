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
        ({"COS_APPROVAL_EXPIRY_HOURS": "0"}, "COS_APPROVAL_EXPIRY_HOURS"),
        ({"COS_APPROVAL_EXPIRY_HOURS": "two days"}, "COS_APPROVAL_EXPIRY_HOURS"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_extra_service_hosts_are_added_to_teams() -> None:
    settings = Settings.from_env({"COS_ALLOWED_SERVICE_HOSTS": "a.example, b.example;"})
    assert settings.allowed_service_hosts == ("smba.trafficmanager.net", "a.example", "b.example")


def test_local_mode_makes_a_key_once_in_an_owner_only_file_and_production_needs_one(tmp_path) -> None:
    import stat

    from planner.vault import Vault

    key_file = tmp_path / "local.key"
    local = Settings.from_env({"COS_SECRET_KEY_FILE": str(key_file)})
    vault = local.vault()
    assert vault is not None
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = vault.encrypt(b"a secret")
    assert local.vault().decrypt(token) == b"a secret"  # type: ignore[union-attr]  # the same key next time
    production = {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": "pw", "MICROSOFT_APP_TENANT_ID": "t"}
    assert Settings.from_env(production, strict=False).vault() is None
    key = Vault.generate_key()
    configured = Settings.from_env(production | {"COS_SECRET_KEYS": key}, strict=False)
    assert configured.vault() is not None
    assert key not in repr(configured)
