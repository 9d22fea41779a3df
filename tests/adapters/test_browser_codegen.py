"""Recipes imported from Playwright's recorder (codegen, Python): read, never run; typed text becomes input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.browser_codegen import CodegenNotUnderstood, checked_config, recipe_from_codegen
from bot.cli import main

RECORDED_ASYNC = """
import asyncio
import re
from playwright.async_api import Playwright, async_playwright, expect


async def run(playwright: Playwright) -> None:
    browser = await playwright.chromium.launch(headless=False)
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto("https://flows.example.com/workflows/new?from=menu")
    await page.get_by_label("Workflow name").fill("Weekly digest for the board")
    await page.get_by_label("Trigger").select_option("schedule")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_text("Saved W-")).to_be_visible()
    await page.get_by_test_id("password").fill("hunter2-secret")
    await page.keyboard.press("Escape")
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_role("row", name=re.compile("W-1")).click()

    # ---------------------
    await context.close()
    await browser.close()


async def main() -> None:
    async with async_playwright() as playwright:
        await run(playwright)


asyncio.run(main())
"""


def test_an_async_recording_becomes_steps_with_readable_selectors_and_typed_text_becomes_input() -> None:
    imported = recipe_from_codegen(RECORDED_ASYNC, description="Create a workflow")

    assert imported.origins == ["https://flows.example.com"]
    assert imported.recipe["steps"] == [
        {"kind": "goto", "url": "https://flows.example.com/workflows/new?from=menu"},
        {"kind": "fill", "selector": "label=Workflow name", "value": "{workflow_name}"},
        {"kind": "select", "selector": "label=Trigger", "value": "{trigger}"},
        {"kind": "click", "selector": 'role=button[name="Save" s]'},
        {"kind": "wait_for", "selector": "text=Saved W-"},
        {"kind": "fill", "selector": '[data-testid="password"]', "value": "{password}"},
        {"kind": "press", "key": "Escape"},
    ]
    text = json.dumps(imported.recipe)
    assert "Weekly digest" not in text
    assert "hunter2" not in text
    assert "schedule" not in text
    assert [note.split(":")[0] for note in imported.notes] == ["line 18", "line 19"]
    config = checked_config(imported, "create_workflow")
    assert config["origins"] == ["https://flows.example.com"]


def test_what_is_not_python_or_records_nothing_is_refused_with_a_reason() -> None:
    with pytest.raises(CodegenNotUnderstood, match="not Python"):
        recipe_from_codegen("page.goto(")
    with pytest.raises(CodegenNotUnderstood, match="no recorded action"):
        recipe_from_codegen("import os\nprint('hello')\n")


def test_cos_adapters_import_codegen_prints_a_config_to_register_and_what_it_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    recording = tmp_path / "recording.py"
    recording.write_text(RECORDED_ASYNC)

    assert main(["adapters", "import-codegen", str(recording), "--capability", "create_workflow"]) == 0

    out, err = capsys.readouterr()
    config = json.loads(out)
    assert list(config["capabilities"]) == ["create_workflow"]
    assert config["origins"] == ["https://flows.example.com"]
    assert "line 18: once is not a recipe step" in err
    assert "hunter2" not in out + err
