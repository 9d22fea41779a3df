"""`cos decisions verify` and `cos decisions export`, against a SQLite file as an operator would run them."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from planner.decisions import DecisionLog
from planner.governance import DecisionRecord
from planner.migrate import upgrade
from planner.model import Window
from planner.store import Store, create_engine

TENANT = "contoso"
START = datetime(2026, 2, 10, 9, tzinfo=UTC)


def log_decisions(url: str) -> int:
    """Three decisions, a day apart: hubspot stopped (in plan P1), salesforce allowed, a person approved (in P1).
    Returns the master plan's id."""

    async def write() -> int:
        at = START
        store = Store(create_engine(url), clock=lambda: at)
        try:
            await upgrade(store.engine)
            window = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
            plans = store.tenant(TENANT)
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
    path = tmp_path / "decisions.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
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
