"""The browser adapter from a shell: `cos adapters test <name> --capability X --dry-run` against a loopback app.

`cos` runs its own event loop, so the app is served from a thread with a loop of its own.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.cli import main
from planner.store.vault import Vault
from tests.adapters.test_browser_spa import EMAIL, PASSWORD, flows_config
from tests.fakes.spa_vendor import SpaVendor


@contextmanager
def served_in_a_thread(vendor: SpaVendor) -> Iterator[SpaVendor]:
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(vendor.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "the app did not start"
    try:
        yield vendor
    finally:
        asyncio.run_coroutine_threadsafe(vendor.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_dry_run_from_the_shell_stops_before_the_first_step_that_changes_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert main(["db", "upgrade"]) == 0
    monkeypatch.setenv("COS_SECRET_KEYS", Vault.generate_key())
    monkeypatch.setenv("COS_ADAPTER_ALLOWED_NETWORKS", "127.0.0.1/32")
    tenant = ["--tenant", "contoso"]
    with served_in_a_thread(SpaVendor(email=EMAIL, password=PASSWORD, two_factor=False)) as vendor:
        config = flows_config(vendor)
        del config["name"]
        assert main(["adapters", "register", *tenant, "browser", "flows", json.dumps(config)]) == 0
        capsys.readouterr()

        work = json.dumps({"name": "Weekly digest", "trigger": "schedule"})
        dry_run = ["adapters", "test", *tenant, "flows", "--capability", "create_workflow", "--dry-run"]
        assert main([*dry_run, "--input", work]) == 0

        out = capsys.readouterr().out
        assert "Dry run of create_workflow: stopped before step 3 (select 'label=Trigger')" in out
        assert "Nothing was submitted." in out
        assert "kept screenshot (image/png" in out
        assert vendor.workflows == []
        assert vendor.logins == 1  # signing in is part of a dry run


def test_a_dry_run_needs_a_capability_and_an_agent_that_can_do_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert main(["db", "upgrade"]) == 0
    monkeypatch.setenv("COS_SECRET_KEYS", Vault.generate_key())
    config = {"transport": "http", "url": "https://agent.example/mcp"}
    assert main(["adapters", "register", "--tenant", "contoso", "mcp", "crm", json.dumps(config)]) == 0

    assert main(["adapters", "test", "--tenant", "contoso", "crm", "--dry-run"]) == 2
    assert "--dry-run needs --capability" in capsys.readouterr().err
    assert main(["adapters", "test", "--tenant", "contoso", "crm", "--dry-run", "--capability", "draft_email"]) == 1
    assert (
        "cannot do a dry run: only a browser recipe knows which of its steps would change something"
        in capsys.readouterr().err
    )
