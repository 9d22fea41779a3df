from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from bot.cli import main
from bot.settings import is_loopback
from planner.migrate import alembic_config


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
    assert main(["tick", "--at", "2026-02-10T09:00:00"]) == 0
    assert "as of 2026-02-10T09:00:00+00:00: 0 fired; 0 sent" in capsys.readouterr().out
    assert main(["tick", "--at", "next tuesday"]) == 2
    assert "ISO-8601" in capsys.readouterr().err


def test_outbox_lists_counts_and_refuses_to_replay_what_is_not_dead(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    assert main(["outbox"]) == 0
    assert "outbox: empty" in capsys.readouterr().out
    assert main(["outbox", "--replay", "42"]) == 1
    assert "0 message(s) put back" in capsys.readouterr().out
