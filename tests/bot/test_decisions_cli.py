"""`cos decisions verify`, `checkpoint` and `export`, against a SQLite file as an operator would run them."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import logging
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.scheduler import keep_checkpoint
from planner.domain.decisions import Decision, DecisionKeys, canonical_json
from planner.domain.governance import DecisionRecord
from planner.domain.model import Window
from planner.services.decisions import DecisionLog
from planner.services.plans import Plans
from planner.store import Store, create_engine
from planner.store.migrate import upgrade
from planner.store.vault import Vault

TENANT = "contoso"
START = datetime(2026, 2, 10, 9, tzinfo=UTC)
SECRET_KEY = Vault.generate_key()
KEYS = DecisionKeys.from_vault(Vault([SECRET_KEY]))


def log_decisions(url: str, keys: DecisionKeys | None = KEYS) -> int:
    """Three decisions, a day apart: hubspot stopped (in plan P1), salesforce allowed, a person approved (in P1).
    Returns the master plan's id."""

    async def write() -> int:
        at = START
        store = Store(create_engine(url), clock=lambda: at, decision_keys=keys)
        try:
            await upgrade(store.engine)
            window = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
            plans = Plans(store, TENANT)
            master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
            tactical = await plans.create_tactical_plan(
                master.id, title="Launch", owner="aad-lead", window=window, actor="aad-lead"
            )
            task = await plans.add_task(tactical.id, title="Launch email", due_on=date(2026, 2, 20), actor="aad-lead")
            log = DecisionLog(store, TENANT)
            for day, (actor, agent, verdict, subject) in enumerate(
                [
                    ("policy", "hubspot", "stop", f"task:{task.id}"),
                    ("policy", "salesforce", "go", "task:999"),
                    ("aad-lead", "hubspot", "approved", f"task:{task.id}"),
                ]
            ):
                await log.record(
                    DecisionRecord(
                        tenant_id=TENANT,
                        actor=actor,
                        action="delegation.checked",
                        subject=subject,
                        verdict=verdict,
                        rationale=f"reason {day + 1}",
                        data={"agent": agent, "capability": "send_email"},
                        at=START + timedelta(days=day),
                    )
                )
            return master.id
        finally:
            await store.close()

    return asyncio.run(write())


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The bot's database, with the key that signs its log and the checkpoint file where an operator keeps them."""
    path = tmp_path / "decisions.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("COS_SECRET_KEYS", SECRET_KEY)
    monkeypatch.setenv("COS_DECISION_CHECKPOINTS", str(tmp_path / "checkpoints.json"))
    assert main(["db", "upgrade"]) == 0
    return path


def test_verify_passes_an_intact_log_and_names_the_edited_entry(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["decisions", "verify"]) == 0
    assert "no decisions logged yet" in capsys.readouterr().out
    log_decisions(f"sqlite+aiosqlite:///{database}")
    assert main(["decisions", "verify", "--tenant", TENANT]) == 0
    assert "tenant contoso: 3 entries, intact (last entry 3, hash " in capsys.readouterr().out

    with sqlite3.connect(database) as raw:
        raw.execute("UPDATE decisions SET rationale = 'nothing to see' WHERE seq = 2")
    assert main(["decisions", "verify"]) == 1
    assert "tenant contoso: BROKEN at entry 2, edited: its content" in capsys.readouterr().out

    with sqlite3.connect(database) as raw:
        raw.execute("DELETE FROM decisions WHERE seq IN (1, 2)")
    assert main(["decisions", "verify"]) == 1
    assert "BROKEN at entry 1, deleted: entries 1 to 2 are missing" in capsys.readouterr().out


def test_export_writes_json_lines_filtered_by_agent_plan_verdict_and_time(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master = log_decisions(f"sqlite+aiosqlite:///{database}")

    def exported(*filters: str) -> list[int]:
        assert main(["decisions", "export", "--tenant", TENANT, *filters]) == 0
        captured = capsys.readouterr()
        seqs = [json.loads(line)["seq"] for line in captured.out.splitlines()]
        assert f"{len(seqs)} decision(s) exported" in captured.err
        return seqs

    assert exported() == [1, 2, 3]
    assert exported("--agent", "hubspot") == [1, 3]
    assert exported("--plan", f"P{master}") == [1, 3]
    assert exported("--verdict", "go") == [2]
    assert exported("--since", "2026-02-11") == [2, 3]
    assert exported("--since", "2026-02-10T10:00:00+00:00", "--until", "2026-02-12") == [2]
    assert exported("--agent", "hubspot", "--verdict", "approved") == [3]
    assert exported("--tenant", "fabrikam") == []


def test_export_writes_csv_to_a_file(database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_decisions(f"sqlite+aiosqlite:///{database}")
    out = tmp_path / "decisions.csv"
    assert main(["decisions", "export", "--tenant", TENANT, "--format", "csv", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    with out.open(encoding="utf-8", newline="") as written:
        rows = list(csv.DictReader(written))
    assert [(r["seq"], r["verdict"], r["actor"]) for r in rows] == [
        ("1", "stop", "policy"),
        ("2", "go", "policy"),
        ("3", "approved", "aad-lead"),
    ]
    assert rows[0]["at"] == "2026-02-10T09:00:00.000000+00:00"
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert json.loads(rows[0]["data"]) == {"agent": "hubspot", "capability": "send_email"}


def test_export_refuses_a_time_it_cannot_read(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decisions", "export", "--tenant", TENANT, "--since", "last tuesday"]) == 2
    assert "ISO-8601" in capsys.readouterr().err
    assert main(["decisions", "export", "--tenant", TENANT, "--plan", "launch"]) == 2
    assert "such as P3" in capsys.readouterr().err


def entries(database: Path) -> list[Decision]:
    async def read() -> list[Decision]:
        store = Store(create_engine(f"sqlite+aiosqlite:///{database}"))
        try:
            return await DecisionLog(store, TENANT).entries()
        finally:
            await store.close()

    return asyncio.run(read())


def test_checkpoint_then_verify_finds_the_tail_cut_off_and_the_head_moved_back(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_decisions(f"sqlite+aiosqlite:///{database}")
    assert main(["decisions", "checkpoint"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint {tmp_path / 'checkpoints.json'} as of " in out
    assert "tenant contoso: 3 entries, last entry 3, hash " in out
    assert main(["decisions", "verify"]) == 0
    assert "intact (last entry 3, hash " in capsys.readouterr().out

    with sqlite3.connect(database) as raw:
        raw.execute("DELETE FROM decisions WHERE seq = 3")
        raw.execute("UPDATE decision_heads SET seq = 2, hash = (SELECT hash FROM decisions WHERE seq = 2)")
    assert main(["decisions", "verify"]) == 1
    assert (
        "tenant contoso: BROKEN at entry 3, deleted: entry 3 is missing from the end, and the log's head was moved "
        "back to entry 2" in capsys.readouterr().out
    )
    assert main(["decisions", "checkpoint"]) == 1  # the checkpoint is not moved back with it
    assert "tenant contoso: its log ends at entry 2, it reached 3" in capsys.readouterr().err


def test_verify_finds_a_tenants_log_removed_whole(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_decisions(f"sqlite+aiosqlite:///{database}")
    assert main(["decisions", "checkpoint"]) == 0
    with sqlite3.connect(database) as raw:
        raw.execute("DELETE FROM decisions")
        raw.execute("DELETE FROM decision_refs")
        raw.execute("DELETE FROM decision_heads")
    assert main(["decisions", "verify"]) == 1
    assert (
        "tenant contoso: BROKEN at entry 1, deleted: entries 1 to 3 are missing: the tenant's whole log is gone"
        in capsys.readouterr().out
    )


def old_hash(entry: Decision) -> str:
    """The hash the log computed before it was keyed."""
    fields = entry.hashed_fields()
    fields.pop("key_id", None)
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def test_verify_finds_an_edit_re_hashed_with_plain_sha256(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_decisions(f"sqlite+aiosqlite:///{database}")
    with sqlite3.connect(database) as raw:
        raw.execute("UPDATE decisions SET verdict = 'go' WHERE seq = 1")
    prev_hash = "0" * 64
    with sqlite3.connect(database) as raw:
        for entry in entries(database):
            rehashed = replace(entry, prev_hash=prev_hash)
            prev_hash = old_hash(rehashed)
            raw.execute(
                "UPDATE decisions SET prev_hash = ?, hash = ? WHERE seq = ?", (rehashed.prev_hash, prev_hash, entry.seq)
            )
        raw.execute("UPDATE decision_heads SET hash = ?", (prev_hash,))
    assert main(["decisions", "verify"]) == 1
    assert (
        "tenant contoso: BROKEN at entry 1, edited: its content (who, what, why, when…) no longer matches its "
        "signature" in capsys.readouterr().out
    )


def test_verify_refuses_a_checkpoint_edited_by_hand(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_decisions(f"sqlite+aiosqlite:///{database}")
    assert main(["decisions", "checkpoint", "--out", str(tmp_path / "elsewhere.json")]) == 0
    capsys.readouterr()
    edited = tmp_path / "elsewhere.json"
    edited.write_text(edited.read_text().replace('"count": 3', '"count": 30'))
    assert main(["decisions", "verify", "--checkpoints", str(edited)]) == 1
    captured = capsys.readouterr()
    assert "tenant contoso: 3 entries, intact" in captured.out
    assert "its signature does not match its content: it was edited" in captured.err


def test_verify_reports_legacy_unkeyed_entries_and_that_no_checkpoint_was_written_yet(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_decisions(f"sqlite+aiosqlite:///{database}", keys=None)
    assert main(["decisions", "verify"]) == 0
    out = capsys.readouterr().out
    assert "tenant contoso: 3 entries, intact (last entry 3, hash " in out
    assert "entries 1 to 3 are legacy, unkeyed (logged before the key)" in out
    assert "no checkpoint at " in out


def test_the_schedulers_checkpoint_follows_the_log_and_raises_the_alarm_when_it_was_cut_short(
    database: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_decisions(f"sqlite+aiosqlite:///{database}")
    path = tmp_path / "checkpoints.json"

    async def tick_checkpoint() -> None:
        store = Store(create_engine(f"sqlite+aiosqlite:///{database}"), decision_keys=KEYS)
        try:
            await keep_checkpoint(store, path)
        finally:
            await store.close()

    asyncio.run(tick_checkpoint())
    assert '"seq": 3' in path.read_text()
    with sqlite3.connect(database) as raw:
        raw.execute("DELETE FROM decisions WHERE seq = 3")
        raw.execute("UPDATE decision_heads SET seq = 2, hash = (SELECT hash FROM decisions WHERE seq = 2)")
    with caplog.at_level(logging.ERROR, logger="bot.scheduler"):
        asyncio.run(tick_checkpoint())
    assert "no longer extends its checkpoint" in caplog.text
    assert '"seq": 3' in path.read_text()
