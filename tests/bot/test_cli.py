from __future__ import annotations

import asyncio
from datetime import date

import pytest
from alembic.script import ScriptDirectory

from bot.cli import main
from bot.settings import is_loopback
from planner.domain.model import MetricSpec, Window
from planner.services.plans import Plans
from planner.store import Store, create_engine
from planner.store.migrate import alembic_config


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_local_mode_refuses_a_public_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--insecure-no-auth" in capsys.readouterr().err


def test_db_upgrade_creates_the_schema(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert main(["db", "upgrade"]) == 0
    assert f"revision {head}" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert f"revision {head}" in capsys.readouterr().out


def test_tick_runs_once_as_of_a_given_time(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'tick.db'}")
    assert main(["db", "upgrade"]) == 0
    assert main(["tick", "--at", "2026-02-10T09:00:00", "--apply"]) == 0
    assert "as of 2026-02-10T09:00:00+00:00: 0 fired; 0 sent" in capsys.readouterr().out
    assert main(["tick", "--at", "next tuesday"]) == 2
    assert "ISO-8601" in capsys.readouterr().err


def test_outbox_lists_counts_and_refuses_to_replay_what_is_not_dead(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["outbox"]) == 0
    assert "outbox: empty" in capsys.readouterr().out
    assert main(["outbox", "--replay", "42"]) == 1
    assert "0 message(s) put back" in capsys.readouterr().out


def test_adapters_register_test_list_disable_rotate_and_remove_from_a_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    import json
    import sys

    from planner.store.vault import Vault

    old_key = Vault.generate_key()
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COS_SECRET_KEYS", old_key)
    assert main(["db", "upgrade"]) == 0
    # The operator allows the command (an admin's config only names it) and the variable a config may set.
    entry = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
    monkeypatch.setenv("COS_STDIO_COMMANDS", json.dumps({"clock": {**entry, "allow_env": ["API_TOKEN"]}}))
    config = {"transport": "stdio", "command": "clock", "env": {"API_TOKEN": "very-secret-value"}}
    tenant = ["--tenant", "contoso"]
    assert main(["adapters", "register", *tenant, "mcp", "clock", json.dumps(config)]) == 0
    assert "mcp:clock registered; secret fields kept encrypted: env" in capsys.readouterr().out
    assert main(["adapters", "test", *tenant, "clock"]) == 0
    tested = capsys.readouterr().out
    assert "clock: ok" in tested
    assert "get_current_time (off): Get current time" in tested
    assert main(["adapters", "enable", *tenant, "clock", "get_current_time"]) == 0
    assert "clock get_current_time enabled, its definition pinned" in capsys.readouterr().out
    assert main(["adapters", "tools", *tenant, "clock"]) == 0
    tools = capsys.readouterr().out
    assert "get_current_time (on)" in tools
    assert "convert_time (off)" in tools
    assert main(["adapters", "classify", *tenant, "clock", "convert_time", "personal_data", "budget"]) == 0
    assert "clock convert_time classified: personal_data, budget" in capsys.readouterr().out
    assert main(["adapters", "classify", *tenant, "clock", "convert_time", "spending"]) == 1
    assert "There is no approval gate" in capsys.readouterr().err
    assert main(["adapters", "list", *tenant]) == 0
    listed = capsys.readouterr().out
    assert "mcp:clock (enabled)" in listed
    assert "env=set" in listed
    assert "very-secret-value" not in listed
    assert main(["adapters", "disable", *tenant, "clock"]) == 0
    assert main(["adapters", "list", "--tenant", "fabrikam"]) == 0  # another tenant sees nothing
    assert "clock" not in capsys.readouterr().out.split("disabled")[-1]
    # Rotation: a new key in front, re-encrypt, then the old key can go.
    new_key = Vault.generate_key()
    monkeypatch.setenv("COS_SECRET_KEYS", f"{new_key},{old_key}")
    assert main(["adapters", "rotate-keys"]) == 0
    assert "1 adapter(s) re-encrypted" in capsys.readouterr().out
    monkeypatch.setenv("COS_SECRET_KEYS", new_key)
    assert main(["adapters", "enable", *tenant, "clock"]) == 0
    assert main(["adapters", "test", *tenant, "clock"]) == 0
    assert main(["adapters", "register", *tenant, "mcp", "broken", '{"transport": "x"}']) == 1
    assert "invalid adapter configuration" in capsys.readouterr().err
    assert main(["adapters", "register", *tenant, "mcp", "broken", "{not json"]) == 2
    assert main(["adapters", "remove", *tenant, "clock"]) == 0
    assert "mcp:clock removed" in capsys.readouterr().out


def test_every_command_finds_the_same_database_whatever_folder_it_runs_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("COS_DATA_DIR", str(data))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    assert main(["db", "upgrade"]) == 0
    assert (data / "chief_of_staff.db").exists()
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "two")
    assert main(["tick"]) == 0
    assert "0 fired" in capsys.readouterr().out
    assert main(["where"]) == 0
    where = capsys.readouterr().out
    assert f"database:      SQLite file {data / 'chief_of_staff.db'} (exists)" in where
    assert f"secret key:    {data / 'chief_of_staff.key'}" in where
    assert f"checkpoint:    {data / 'decision_checkpoints.json'}" in where
    assert not list((tmp_path / "one").iterdir())
    assert not list((tmp_path / "two").iterdir())


def test_a_command_on_a_database_that_is_not_there_says_so_and_makes_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    monkeypatch.setenv("COS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chief_of_staff.db").write_bytes(b"")  # where earlier releases kept it
    for argv in (["tick"], ["outbox"], ["db", "current"], ["policy", "show", "--tenant", "t"]):
        assert main(argv) == 1
        error = capsys.readouterr().err
        assert f"there is no database at {tmp_path / 'data' / 'chief_of_staff.db'}" in error
        assert "`cos serve` makes it on its first start" in error
        assert f"This folder holds {tmp_path / 'chief_of_staff.db'}, where earlier releases kept" in error
    assert not (tmp_path / "data").exists()
    assert main(["where"]) == 0
    assert "(not made yet: `cos serve` makes it)" in capsys.readouterr().out


def test_cos_where_names_the_settings_file_and_what_it_chose(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    settings_file = tmp_path / "ops.env"
    settings_file.write_text("DATABASE_URL=sqlite+aiosqlite:///plans.db\nCOS_SECRET_KEY_FILE=keys/local.key\n")
    monkeypatch.setenv("COS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COS_ENV_FILE", str(settings_file))
    for name in ("DATABASE_URL", "COS_SECRET_KEY_FILE", "COS_SECRET_KEYS", "MICROSOFT_APP_ID"):
        monkeypatch.setenv(name, "")  # recorded, so what the file sets is undone after the test
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert main(["where"]) == 0
    where = capsys.readouterr().out
    assert f"settings file: {settings_file}" in where
    assert f"database:      SQLite file {tmp_path / 'data' / 'plans.db'} (not made yet" in where
    assert f"secret key:    {tmp_path / 'data' / 'keys' / 'local.key'} (not made yet" in where
    assert "mode:          local mode (no MICROSOFT_APP_ID)" in where


def test_adapters_test_and_list_print_no_escape_sequence_an_agent_or_an_admin_put_in_their_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    import json
    import sys

    from planner.store.vault import Vault
    from tests.adapters.operator import ROOT

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COS_SECRET_KEYS", Vault.generate_key())
    entry = {"command": sys.executable, "args": ["-m", "tests.adapters.vendor_agent", "--stdio", "--hostile"]}
    monkeypatch.setenv("COS_STDIO_COMMANDS", json.dumps({"vendor": {**entry, "cwd": str(ROOT)}}))
    tenant = ["--tenant", "contoso"]
    config = {"transport": "stdio", "command": "vendor", "capabilities": {"brief": "account_brief"}}
    assert main(["db", "upgrade"]) == 0
    assert main(["adapters", "register", *tenant, "mcp", "vendor", json.dumps(config)]) == 0
    capsys.readouterr()
    assert main(["adapters", "list", *tenant]) == 0
    listed = capsys.readouterr().out
    assert main(["adapters", "test", *tenant, "vendor"]) == 0
    tested = capsys.readouterr().out
    for printed in (listed, tested):
        assert not any(ch in printed for ch in "\x1b\x07\r\x9b"), repr(printed)
    assert "mcp:vendor (enabled)" in listed
    assert "brief (off): Summarise an account's activity.[docs]\nOK " in tested  # each escape gone whole


def test_a_spend_feed_is_added_and_listed_from_a_shell(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'feeds.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0

    async def a_plan_with_a_spend_kpi() -> None:
        store = Store(create_engine(url))
        try:
            await Plans(store, "contoso").create_master_plan(
                title="Q1 pipeline",
                owner="aad-lead",
                window=Window(start=date(2026, 1, 1), end=date(2026, 3, 31)),
                metrics=[MetricSpec(name="Paid spend", target=50_000, unit="EUR")],
                actor="aad-lead",
            )
        finally:
            await store.close()

    asyncio.run(a_plan_with_a_spend_kpi())
    capsys.readouterr()
    add = ["metrics", "add-feed", "Paid spend", "--tenant", "contoso", "--adapter", "vendor"]
    add += ["--capability", "campaign_spend", "--field", "spent", "--unit", "EUR", "--spend"]
    assert main(add) == 0
    assert (
        "feed 1: Paid spend from vendor campaign_spend .spent, every 60 min, its rises recorded as the plan's spend"
        in (capsys.readouterr().out)
    )
    assert main(["metrics", "feeds", "--tenant", "contoso"]) == 0
    assert "(EUR, spend to date)" in capsys.readouterr().out


def test_adapters_test_help_says_how_to_act_as_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["adapters", "test", "--help"])
    assert ended.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "--as USER_ID act as this person (their Teams user id)" in shown
    assert "the grant they gave it when signing in from Teams" in shown


@pytest.mark.parametrize("command", [["tools", "--help"], ["enable", "--help"]])
def test_adapters_tools_and_enable_help_say_how_to_act_as_a_person(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["adapters", *command])
    assert ended.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "--as USER_ID act as this person (their Teams user id)" in shown
    assert "the grant they gave it when signing in from Teams" in shown
