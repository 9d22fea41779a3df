from __future__ import annotations

import asyncio
import re
import socket
import stat
from pathlib import Path

import pytest

from bot.cli import main
from bot.server import LocalKeyLost, prepare_local_key
from bot.settings import LocalKeyMissing, Settings, SettingsError
from planner.domain.governance import DecisionRecord
from planner.services.context import ContextSources
from planner.services.decisions import DecisionLog
from planner.store import Store
from planner.store.migrate import upgrade
from planner.store.vault import Vault


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
        ({"MICROSOFT_APP_ID": "a", "MICROSOFT_APP_PASSWORD": "p", "COS_LOCAL_ADMIN": "aad-me"}, "COS_LOCAL_ADMIN"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_extra_service_hosts_are_added_to_teams() -> None:
    settings = Settings.from_env({"COS_ALLOWED_SERVICE_HOSTS": "a.example, b.example;"})
    assert settings.allowed_service_hosts == ("smba.trafficmanager.net", "a.example", "b.example")


def test_local_mode_reads_its_key_file_never_makes_one_itself_and_production_needs_keys(tmp_path: Path) -> None:
    key_file = tmp_path / "local.key"
    local = Settings.from_env({"COS_SECRET_KEY_FILE": str(key_file)})
    with pytest.raises(LocalKeyMissing, match=re.escape(str(key_file))):
        local.vault()
    assert not key_file.exists()
    local.create_local_key()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    vault = local.vault()
    assert vault is not None
    token = vault.encrypt(b"a secret")
    assert local.vault().decrypt(token) == b"a secret"  # type: ignore[union-attr]  # the same key next time
    with pytest.raises(FileExistsError):
        local.create_local_key()  # never replaces a key
    production = {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": "pw", "MICROSOFT_APP_TENANT_ID": "t"}
    assert Settings.from_env(production, strict=False).vault() is None
    key = Vault.generate_key()
    configured = Settings.from_env(production | {"COS_SECRET_KEYS": key}, strict=False)
    assert configured.vault() is not None
    assert key not in repr(configured)


async def test_serve_makes_the_local_key_only_while_the_database_holds_no_sealed_secret(
    store: Store, tmp_path: Path
) -> None:
    key_file = tmp_path / "local.key"
    settings = Settings.from_env({"COS_SECRET_KEY_FILE": str(key_file)})
    await prepare_local_key(settings, store)
    first_key = key_file.read_text()
    await prepare_local_key(settings, store)
    assert key_file.read_text() == first_key  # kept, not replaced
    vault = settings.vault()
    assert vault is not None
    await ContextSources(store, "tenant-contoso", vault).add("crm", actor="aad-admin")
    key_file.unlink()
    with pytest.raises(LocalKeyLost) as lost:
        await prepare_local_key(settings, store)
    assert str(key_file) in str(lost.value)
    assert "1 secret(s) or signed decision(s)" in str(lost.value)
    assert "Restore the file from a backup" in str(lost.value)
    assert not key_file.exists()  # no new key that would open nothing


def test_cos_serve_stops_at_start_when_the_key_of_stored_secrets_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cos.db'}"
    key_file = tmp_path / "local.key"
    for name in ("MICROSOFT_APP_ID", "COS_SECRET_KEYS", "COS_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COS_SECRET_KEY_FILE", str(key_file))
    settings = Settings.from_env({"COS_SECRET_KEY_FILE": str(key_file)})

    async def seal_a_secret() -> None:
        store = Store.from_url(url)
        try:
            await upgrade(store.engine)
            await prepare_local_key(settings, store)
            vault = settings.vault()
            assert vault is not None
            await ContextSources(store, "tenant-contoso", vault).add("crm", actor="aad-admin")
        finally:
            await store.close()

    asyncio.run(seal_a_secret())
    key_file.unlink()
    with socket.socket() as taken:  # if serve went on, it would fail to listen here rather than serve for ever
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1])]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert f"the local secret key file {key_file} is missing" in error
    assert "Restore the file from a backup (or set COS_SECRET_KEYS to that key)" in error
    assert not key_file.exists()


async def test_a_lost_local_key_that_signed_the_decision_log_stops_serve_too(store: Store, tmp_path: Path) -> None:
    key_file = tmp_path / "local.key"
    settings = Settings.from_env({"COS_SECRET_KEY_FILE": str(key_file)})
    await prepare_local_key(settings, store)
    keys = settings.decision_keys()
    assert keys is not None
    store.decision_keys = keys  # as `cos serve` sets it once the key is there
    await DecisionLog(store, "tenant-contoso").record(
        DecisionRecord(
            tenant_id="tenant-contoso",
            actor="aad-lead",
            action="plan.created",
            subject="plan:1",
            verdict="done",
            rationale="the leader made the plan",
        )
    )
    key_file.unlink()
    with pytest.raises(LocalKeyLost) as lost:
        await prepare_local_key(settings, store)
    assert "1 secret(s) or signed decision(s)" in str(lost.value)
    assert "start over on purpose: set COS_SECRET_KEYS to a new key" in str(lost.value)
    assert not key_file.exists()


def test_a_shell_command_that_keeps_secrets_makes_the_local_key_before_serve_has_but_never_over_a_lost_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "local.key"
    for name in ("MICROSOFT_APP_ID", "COS_SECRET_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cos.db'}")
    monkeypatch.setenv("COS_SECRET_KEY_FILE", str(key_file))
    assert main(["db", "upgrade"]) == 0
    assert main(["context", "add-source", "crm", "--tenant", "contoso"]) == 0
    assert key_file.exists()
    key_file.unlink()
    assert main(["adapters", "list", "--tenant", "contoso"]) == 2
    assert "is missing, but the database holds 1 secret(s)" in capsys.readouterr().err
    assert not key_file.exists()


def test_the_bots_files_live_in_one_per_user_folder_never_the_current_one(tmp_path: Path) -> None:
    home = Settings.from_env({"HOME": str(tmp_path)})
    folder = tmp_path / ".local" / "share" / "chief-of-staff"
    assert home.data_dir == folder
    assert home.database_file == folder / "chief_of_staff.db"
    assert Path(home.secret_key_file) == folder / "chief_of_staff.key"
    assert home.decision_checkpoints_path == folder / "decision_checkpoints.json"
    xdg = Settings.from_env({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert xdg.database_file == tmp_path / "xdg" / "chief-of-staff" / "chief_of_staff.db"
    assert Settings.from_env({"HOME": str(tmp_path), "XDG_DATA_HOME": "relative"}).data_dir == folder


def test_relative_paths_in_settings_are_relative_to_the_data_folder(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "COS_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "sqlite+aiosqlite:///plans/cos.db",
            "COS_SECRET_KEY_FILE": "keys/local.key",
            "COS_DECISION_CHECKPOINTS": "log/heads.json",
        }
    )
    assert settings.database_file == tmp_path / "plans" / "cos.db"
    assert settings.database_shown == f"SQLite file {tmp_path / 'plans' / 'cos.db'}"
    assert Path(settings.secret_key_file) == tmp_path / "keys" / "local.key"
    assert settings.decision_checkpoints_path == tmp_path / "log" / "heads.json"
    (tmp_path / "stdio.yaml").write_text("clock: {command: /usr/bin/true}\n")
    listed = Settings.from_env({"COS_DATA_DIR": str(tmp_path), "COS_STDIO_COMMANDS_FILE": "stdio.yaml"})
    assert "clock" in listed.adapter_limits.stdio_commands.entries
    postgres = Settings.from_env({"DATABASE_URL": "postgresql+asyncpg://cos:db-secret@db.example/cos"})
    assert postgres.database_file is None
    assert "db-secret" not in postgres.database_shown
    assert "db.example/cos" in postgres.database_shown
    with pytest.raises(SettingsError):  # refused as the settings are read, so never shown
        Settings.from_env({"DATABASE_URL": "cos:pw@db"})
